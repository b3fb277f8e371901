"""Render a script's document for the web: links and images point at the manager's routes."""

from __future__ import annotations

from flask import url_for

from manager.docs.render import ID_PREFIX, Rendered
from manager.docs.service import render_for_script
from manager.models.catalog import Script, ScriptGroup


def _doc_url(script: Script, language: str, fragment: str) -> str:
    url = url_for("docs.viewer", script_id=script.id, lang=language)
    if fragment:
        url += "#" + (fragment if fragment.startswith(ID_PREFIX) else ID_PREFIX + fragment)
    return url


def _image_url(group: ScriptGroup, name: str) -> str:
    return url_for("docs.doc_image", group_id=group.id, name=name)


def render_web(script: Script, text: str) -> Rendered:
    """``text`` rendered as ``script``'s document, sanitised, with the manager's URLs."""
    return render_for_script(script, text, doc_url=_doc_url, image_url=_image_url)
