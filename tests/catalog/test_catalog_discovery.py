"""Discovery over a temporary tree: broken files stay listed with reasons, the rest works."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from catalog_support import script_source
from conftest import WriteFile
from sqlalchemy import select
from sqlalchemy.orm import Session

from manager.catalog.discovery import (
    discover,
    is_runnable,
    refresh_group,
    refresh_script,
    script_path,
)
from manager.catalog.metadata import update_script_metadata
from manager.models import Script, ScriptGroup

GOOD_GROUP = {
    "name": {"en": "Good Group", "es": "Grupo bueno"},
    "description": "Works",
    "icon": "bi-gear",
    "required_level": "operator",
    "conda_environment": "base",
    "execution_timeout": 120,
    "limits": {"memory": "512M", "cpus": 0.5, "pids": 64, "network": "none"},
}
ALPHA = script_source(
    """
    @description: Alpha does things
    @description_es: Alfa hace cosas
    @category: tools
    @tags: one,two
    @parameters: [{"name": "n", "type": "int", "default": 2}]
    """
)


def get_group(session: Session, name: str) -> ScriptGroup:
    group = session.scalar(select(ScriptGroup).where(ScriptGroup.directory_path == name))
    assert group is not None
    return group


def get_script(session: Session, group: str, filename: str) -> Script:
    script = session.scalar(
        select(Script)
        .join(ScriptGroup)
        .where(ScriptGroup.directory_path == group, Script.filename == filename)
    )
    assert script is not None
    return script


def build_tree(write: WriteFile) -> None:
    write("good/metadata.json", GOOD_GROUP)
    write("good/alpha.py", ALPHA)
    write("good/docs/alpha.md", "# Alpha\n")
    write("good/docs/alpha_es.md", "# Alfa\n")
    write("good/beta.py", script_source('@parameters: [{"name": "x",}]'))
    write("good/gamma.py", script_source("@description: Gamma", body="def f(:\n"))
    write("good/_helpers.py", "VALUE = 1\n")
    write("good/notes.txt", "not a script\n")
    write("broken/metadata.json", '{"name": "Broken",\n "required_level": "operator"\n')
    write("broken/tool.py", script_source("@description: Tool in a broken group"))
    write("bare/quick.py", script_source("@description: No metadata.json here"))
    write("_private/hidden.py", "print(1)\n")


def test_discovery_lists_everything_and_marks_only_the_broken_parts(
    session: Session, groups: Path, write: WriteFile
) -> None:
    build_tree(write)

    report = discover(session, groups)
    session.commit()

    assert sorted(report.added) == [
        "bare", "bare/quick.py", "broken", "broken/tool.py",
        "good", "good/alpha.py", "good/beta.py", "good/gamma.py",
    ]  # fmt: skip
    assert report.invalid == {
        "broken": "metadata.json is not valid JSON: Expecting ',' delimiter (line 3 column 1)",
        "good/beta.py": "line 3: @parameters is not valid JSON: "
        "Expecting property name enclosed in double quotes (line 1 column 15)",
        "good/gamma.py": "syntax error: line 6: invalid syntax",
    }
    alpha = get_script(session, "good", "alpha.py")
    assert alpha.invalid_reason is None
    assert alpha.display_name == "Alpha"
    assert alpha.description == "Alpha does things"
    assert alpha.metadata_json["description"] == {
        "en": "Alpha does things",
        "es": "Alfa hace cosas",
    }
    assert alpha.description_long_path == "docs/alpha.md"
    assert alpha.metadata_json["description_long"] == {
        "en": "docs/alpha.md",
        "es": "docs/alpha_es.md",
    }
    assert alpha.tags == "one,two"
    assert alpha.category == "tools"
    assert alpha.parameters[0]["default"] == 2
    assert alpha.required_level == "operator"
    assert alpha.execution_timeout == 120  # from the group
    assert alpha.metadata_json["conda_environment"] == "base"
    assert alpha.file_hash and len(alpha.file_hash) == 64
    assert alpha.last_modified is not None
    assert is_runnable(alpha)
    assert script_path(groups, alpha) == groups / "good" / "alpha.py"

    good = get_group(session, "good")
    assert good.name == "Good Group"
    assert good.metadata_json["icon"] == "gear"
    assert good.metadata_json["limits"] == {
        "memory": "512m",
        "cpus": 0.5,
        "pids": 64,
        "network": "none",
    }
    assert not is_runnable(get_script(session, "good", "beta.py"))
    assert get_script(session, "good", "gamma.py").metadata_json["description"] == {"en": "Gamma"}
    names = {s.filename for s in good.scripts}
    assert names == {"alpha.py", "beta.py", "gamma.py"}


def test_a_broken_group_is_listed_locked_to_admin_and_not_runnable(
    session: Session, groups: Path, write: WriteFile
) -> None:
    build_tree(write)

    report = discover(session, groups)

    broken = get_group(session, "broken")
    tool = get_script(session, "broken", "tool.py")
    assert broken.is_active
    assert broken.required_level == "admin"
    assert tool.required_level == "admin"
    assert tool.invalid_reason is None
    assert not is_runnable(tool)
    assert (
        "required_level held at 'admin' until metadata.json is fixed" in report.warnings["broken"]
    )


def test_a_group_without_metadata_json_is_valid_with_defaults(
    session: Session, groups: Path, write: WriteFile
) -> None:
    build_tree(write)

    report = discover(session, groups)

    bare = get_group(session, "bare")
    assert bare.invalid_reason is None
    assert bare.name == "Bare"
    assert bare.required_level == "operator"
    assert report.warnings["bare"] == ["no metadata.json; defaults are used"]
    assert is_runnable(get_script(session, "bare", "quick.py"))


def test_a_second_scan_without_changes_changes_nothing(
    session: Session, groups: Path, write: WriteFile
) -> None:
    build_tree(write)
    discover(session, groups)
    session.commit()

    report = discover(session, groups)

    assert not report.changed
    assert "good/beta.py" in report.invalid


def test_removed_scripts_and_groups_become_inactive_and_come_back(
    session: Session, groups: Path, write: WriteFile, tmp_path: Path
) -> None:
    build_tree(write)
    discover(session, groups)
    session.commit()
    alpha_id = get_script(session, "good", "alpha.py").id

    (groups / "good" / "alpha.py").unlink()
    shutil.move(groups / "bare", tmp_path / "bare_moved")
    report = discover(session, groups)
    session.commit()

    assert sorted(report.deactivated) == ["bare", "good/alpha.py"]
    assert not get_script(session, "good", "alpha.py").is_active
    assert not get_group(session, "bare").is_active
    assert not get_script(session, "bare", "quick.py").is_active

    write("good/alpha.py", ALPHA)
    shutil.move(tmp_path / "bare_moved", groups / "bare")
    report = discover(session, groups)
    session.commit()

    assert sorted(report.reactivated) == ["bare", "bare/quick.py", "good/alpha.py"]
    alpha = get_script(session, "good", "alpha.py")
    assert alpha.is_active and alpha.id == alpha_id
    assert get_group(session, "bare").is_active


def test_a_missing_groups_folder_is_an_error_not_a_removal(
    session: Session, groups: Path, write: WriteFile
) -> None:
    build_tree(write)
    discover(session, groups)

    report = discover(session, groups / "nowhere")

    assert report.errors == [f"script groups folder {groups / 'nowhere'} does not exist"]
    assert get_group(session, "good").is_active


def test_one_group_can_be_scanned_alone(session: Session, groups: Path, write: WriteFile) -> None:
    build_tree(write)

    report = discover(session, groups, group_dir_name="good")

    assert sorted(report.added) == ["good", "good/alpha.py", "good/beta.py", "good/gamma.py"]
    assert discover(session, groups, group_dir_name="../etc").errors == [
        "'../etc' is not a group folder name"
    ]
    shutil.rmtree(groups / "good")
    assert discover(session, groups, group_dir_name="good").deactivated == ["good"]


def test_refresh_keeps_app_edits_and_applies_file_changes(
    session: Session, groups: Path, write: WriteFile
) -> None:
    build_tree(write)
    discover(session, groups)
    alpha = get_script(session, "good", "alpha.py")
    update_script_metadata(session, alpha, {"display_name": "Edited Alpha", "tags": "x, y"})
    session.commit()

    write("good/alpha.py", ALPHA.replace("Alpha does things", "Alpha does more"))
    report = refresh_script(session, alpha, groups)
    session.commit()

    assert report.updated == ["good/alpha.py"]
    assert alpha.display_name == "Edited Alpha"
    assert alpha.tags == "x,y"
    assert alpha.description == "Alpha does more"
    assert alpha.overrides == {"display_name": {"en": "Edited Alpha"}, "tags": ["x", "y"]}

    refresh_group(session, alpha.group, groups)
    assert alpha.display_name == "Edited Alpha"


def test_invalid_limits_make_the_group_invalid_with_the_reason(
    session: Session, groups: Path, write: WriteFile
) -> None:
    write(
        "limited/metadata.json",
        {"required_level": "developer", "limits": {"memory": "2x", "network": "none"}},
    )
    write("typo/metadata.json", {"limits": {"memroy": "1g"}})
    write("network/metadata.json", {"limits": {"network": "internet", "cpus": 0}})

    report = discover(session, groups)

    assert report.invalid == {
        "limited": "metadata.json: limits.memory: '2x' is not a memory size such as '512m' or '2g'",
        "typo": "metadata.json: limits: unknown limit 'memroy' (expected one of memory, cpus, "
        "pids, run_timeout, idle_timeout, network, max_sessions_per_user, workspace_quota)",
        "network": "metadata.json: limits.network: unknown network policy 'internet' "
        "(expected one of none, internal, egress)",
    }
    # The level was readable, so it stands.
    assert get_group(session, "limited").required_level == "developer"


def test_a_missing_environment_spec_is_a_warning(
    session: Session, groups: Path, write: WriteFile, tmp_path: Path
) -> None:
    envs = tmp_path / "conda-envs"
    envs.mkdir()
    (envs / "base.yml").write_text("name: base\n")
    write("a/metadata.json", {"conda_environment": "base"})
    write("b/metadata.json", {"conda_environment": "gpu-tools"})

    report = discover(session, groups, envs_dir=envs)

    assert report.invalid == {}
    assert "a" not in report.warnings
    warning = "conda environment 'gpu-tools' has no spec file conda-envs/gpu-tools.yml"
    assert report.warnings["b"] == [warning]
    assert get_group(session, "b").metadata_json["warnings"] == [warning]


def test_unknown_levels_never_widen_access(
    session: Session, groups: Path, write: WriteFile
) -> None:
    write("g/metadata.json", {"required_level": "operator"})
    write("g/new.py", script_source("@required_level: admn"))
    write("g/old.py", script_source("@required_level: developer"))
    discover(session, groups)
    write("g/old.py", script_source("@required_level: devloper"))

    discover(session, groups)

    new, old = get_script(session, "g", "new.py"), get_script(session, "g", "old.py")
    assert new.required_level == "admin"
    assert old.required_level == "developer"
    assert old.invalid_reason == (
        "line 3: @required_level: unknown level 'devloper' "
        "(expected one of viewer, operator, developer, admin)"
    )


def test_script_metadata_json_problems(session: Session, groups: Path, write: WriteFile) -> None:
    write("g/metadata.json", {"required_level": "operator"})
    write("g/a.py", script_source("@description: A"))
    write("g/b.py", script_source("@description: B"))
    write(
        "g/scripts/script_metadata.json",
        {
            "a.py": {"required_level": "boss", "colour": "red"},
            "b.py": {"display_name": {"en": "Bee"}},
            "zzz.py": {},
        },
    )

    report = discover(session, groups)

    assert report.invalid == {
        "g/a.py": "scripts/script_metadata.json: a.py: required_level: unknown level 'boss' "
        "(expected one of viewer, operator, developer, admin)"
    }
    assert get_script(session, "g", "a.py").required_level == "admin"
    assert (
        "scripts/script_metadata.json: a.py: unknown field 'colour' ignored"
        in (report.warnings["g/a.py"])
    )
    assert get_script(session, "g", "b.py").display_name == "Bee"
    assert report.warnings["g"] == [
        "scripts/script_metadata.json: entry 'zzz.py' matches no script"
    ]

    write("g/scripts/script_metadata.json", "{broken")
    report = discover(session, groups)

    reason = (
        "scripts/script_metadata.json is not valid JSON: "
        "Expecting property name enclosed in double quotes (line 1 column 2)"
    )
    assert report.invalid == {"g/a.py": reason, "g/b.py": reason}
    assert get_script(session, "g", "b.py").required_level == "operator"  # held, not widened


def test_missing_docs_are_warnings(session: Session, groups: Path, write: WriteFile) -> None:
    write("g/a.py", script_source("@description_long: docs/a.md"))
    write("g/b.py", script_source("@description_long: docs/b.md\n@description_long_fr: ../x.md"))

    report = discover(session, groups)

    assert report.invalid == {
        "g/b.py": "line 3: @description_long: fr: '../x.md' must be a relative .md path "
        "inside the group folder"
    }
    assert report.warnings["g/a.py"] == ["description_long: en: docs/a.md not found"]


def test_auto_discovery_false_is_left_alone_by_automatic_scans(
    session: Session, groups: Path, write: WriteFile
) -> None:
    write("manual/metadata.json", {"auto_discovery": False})
    write("manual/first.py", script_source("@description: first"))
    discover(session, groups)
    write("manual/second.py", script_source("@description: second"))

    discover(session, groups)
    assert [s.filename for s in get_group(session, "manual").scripts] == ["first.py"]

    report = refresh_group(session, get_group(session, "manual"), groups)
    assert report.added == ["manual/second.py"]

    # A group coming back is always scanned, or its scripts would stay inactive.
    shutil.move(groups / "manual", groups.parent / "manual_away")
    discover(session, groups)
    shutil.move(groups.parent / "manual_away", groups / "manual")
    report = discover(session, groups)
    assert sorted(report.reactivated) == ["manual", "manual/first.py", "manual/second.py"]


def test_unreadable_and_odd_files_do_not_stop_discovery(
    session: Session, groups: Path, write: WriteFile
) -> None:
    write("g/good.py", script_source("@description: fine"))
    write("g/latin.py", "").write_bytes(b"# caf\xe9\n")
    (groups / "g" / "folder.py").mkdir()
    link = groups / "g" / "link.py"
    os.symlink(groups / "g" / "good.py", link)

    report = discover(session, groups)

    assert sorted(report.added) == ["g", "g/good.py", "g/latin.py"]
    assert report.invalid["g/latin.py"].startswith("file is not valid UTF-8")
    assert get_script(session, "g", "latin.py").required_level == "admin"
