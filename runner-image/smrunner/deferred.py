"""Defer the modules Flask imports but a session never uses, until something does use them.

``import flask`` is most of the runner's start (about 110 ms of CPU here) and most of its memory.
Part of it serves nobody in a session: ``werkzeug.serving`` (Werkzeug's development server, with
``http.server``, ``http.client``, ``ssl`` and ``socketserver``: the runner serves with waitress),
``werkzeug.test`` (the test client, imported by ``werkzeug/__init__.py`` for its ``Client``) and
``importlib.metadata`` (imported by ``flask.cli`` for ``flask --version``). With ``install()``
these modules are created empty, with a module ``__getattr__`` (PEP 562): the first attribute
anything asks of one that is not there runs the module's real code, in that same module object,
and answers from it. So ``werkzeug.serving.WSGIRequestHandler``, ``from werkzeug import Client``
and ``importlib.metadata.version("flask")`` all work, one import later than usual. A deferred
package's submodules import as usual (``__path__`` is set) without running the package's code.

The names Flask takes from these modules while it imports are answered without the real code:

- ``werkzeug.serving.run_simple`` and ``is_running_from_reloader`` are functions that run the real
  module's code and then call the real function (``app.run()`` of a seed-style script works);
- ``werkzeug.Request``, ``Response`` and ``run_simple`` come from their own submodules.

Measured in the session image (bench/README.md, "deferred imports"): 29 modules fewer, about 13 ms
less CPU before the script's first line and 3 MiB less memory in every session. A deferred
module's ``__spec__.loader`` is the real loader again once its code ran.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

# module -> (functions answered by a stand-in that loads the module first, names answered from
# another module as "module:attribute" without running this one's code)
DEFERRED: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "werkzeug": (
        (),
        {
            "Request": "werkzeug.wrappers:Request",
            "Response": "werkzeug.wrappers:Response",
            "run_simple": "werkzeug.serving:run_simple",
        },
    ),
    "werkzeug.serving": (("run_simple", "is_running_from_reloader"), {}),
    "importlib.metadata": ((), {}),
}


class DeferredLoader:
    """Creates the module empty; its real code runs on the first attribute it lacks."""

    def __init__(self, real: Any, stand_ins: tuple[str, ...], aliases: dict[str, str]) -> None:
        self.real = real
        self.stand_ins = stand_ins
        self.aliases = aliases
        self.lock = threading.RLock()  # held while the real code runs: other threads wait
        self.started = False
        self.hook: Callable[[str], Any] | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # the default module object, with __spec__, __path__ and the rest set

    def exec_module(self, module: ModuleType) -> None:
        def hook(name: str) -> Any:
            return self.attribute(module, name)

        self.hook = hook
        module.__dict__["__getattr__"] = hook
        for name in self.stand_ins:
            module.__dict__[name] = self.stand_in(module, name)

    def load(self, module: ModuleType) -> ModuleType:
        """Run the module's real code in ``module``: once, in the first thread that asks; the
        others wait until it has run."""
        with self.lock:
            if self.started:
                return module
            self.started = True
            for name in self.stand_ins:
                module.__dict__.pop(name, None)
            module.__loader__ = self.real
            if module.__spec__ is not None:
                module.__spec__.loader = self.real
            try:
                self.real.exec_module(module)
            except BaseException:
                sys.modules.pop(module.__name__, None)  # as a failed import leaves it
                raise
            if module.__dict__.get("__getattr__") is self.hook:
                del module.__dict__["__getattr__"]  # unless the real code has one of its own
        return module

    def attribute(self, module: ModuleType, name: str) -> Any:
        """Answer ``module.<name>`` when the module lacks it (PEP 562)."""
        alias = self.aliases.get(name)
        if alias is not None:
            where, _, what = alias.partition(":")
            return getattr(importlib.import_module(where), what)
        if name == "__path__":
            # The import system asks every module (``from m import x``); a package has its own.
            raise AttributeError(name)
        if "__path__" in module.__dict__:
            submodule = f"{module.__name__}.{name}"
            if importlib.util.find_spec(submodule) is not None:
                # ``from package import submodule`` asks the package first.
                return importlib.import_module(submodule)
        self.load(module)
        found = module.__dict__
        if name in found:
            return found[name]
        own = found.get("__getattr__")
        if own is not None and own is not self.hook:
            return own(name)
        # Also what the loading thread itself gets while the code runs: partly initialised.
        raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")

    def stand_in(self, module: ModuleType, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            return getattr(self.load(module), name)(*args, **kwargs)

        call.__name__ = call.__qualname__ = name
        call.__module__ = module.__name__
        return call


class DeferringFinder:
    """Finds the modules of ``DEFERRED`` as the path finder does, with a DeferredLoader."""

    def find_spec(
        self, name: str, path: Any = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        entry = DEFERRED.get(name)
        if entry is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = DeferredLoader(spec.loader, *entry)  # type: ignore[assignment]
        return spec


def install() -> None:
    """Defer the modules of ``DEFERRED`` not imported yet; call before ``import flask``."""
    if not any(isinstance(finder, DeferringFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, DeferringFinder())
