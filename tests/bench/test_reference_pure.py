"""The JupyterHub reference's pure parts: image tags, Dockerfiles, the rows it prints."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "reference"))

import jupyterhub_images  # noqa: E402
from bench_jupyterhub import Result, rows, summary  # noqa: E402

BASE = "scriptsmanager-base:bookworm"


def test_image_tag_changes_with_the_dockerfile_the_base_and_the_pins() -> None:
    dockerfile = jupyterhub_images.hub_dockerfile(BASE)
    pins = jupyterhub_images.HUB_PACKAGES
    tag = jupyterhub_images.image_tag("hub", dockerfile, "sha256:1", pins)
    assert tag.startswith("smbench-jupyterhub-hub:")
    assert tag == jupyterhub_images.image_tag("hub", dockerfile, "sha256:1", pins[::-1])
    assert tag != jupyterhub_images.image_tag("hub", dockerfile, "sha256:2", pins)
    assert tag != jupyterhub_images.image_tag("hub", dockerfile + "\n", "sha256:1", pins)
    assert tag != jupyterhub_images.image_tag("hub", dockerfile, "sha256:1", ("jupyterhub==5",))


def test_dockerfiles_start_from_the_local_base_and_install_without_an_index() -> None:
    for dockerfile in (
        jupyterhub_images.hub_dockerfile(BASE),
        jupyterhub_images.singleuser_dockerfile(BASE),
    ):
        assert dockerfile.splitlines()[0] == f"FROM {BASE}"
        assert "--no-index" in dockerfile
        assert jupyterhub_images.JUPYTERHUB in dockerfile
    assert "nodejs" in jupyterhub_images.hub_dockerfile(BASE)
    assert "USER 1000" in jupyterhub_images.singleuser_dockerfile(BASE)


def test_summary_is_p50_p95_max_in_milliseconds() -> None:
    assert summary([0.1 * n for n in range(1, 21)]) == "1050 / 1900 / 2000"


def test_rows_give_the_reference_ours_and_the_floor_with_ratios() -> None:
    spawn, ours, floor = rows(Result(spawns=[5.0, 6.0, 7.0], ours=[1.0, 1.5, 2.0], floor=[0.5] * 3))
    assert spawn[0] == "jupyterhub: reference spawn p50/p95/max ms (3)"
    assert spawn[1] == "6000 / 7000 / 7000"
    assert "p50 4.0x ours, 12.0x the floor; errors 0" in spawn[2]
    assert "jupyterhub 6.1.1" in spawn[2] and "configurable-http-proxy 5.3.0" in spawn[2]
    assert ours[:2] == ("jupyterhub: ours, cold start p50/p95/max ms (3)", "1500 / 2000 / 2000")
    assert ours[2].endswith("ours/JupyterHub p50 25%")
    assert floor[:2] == ("jupyterhub: docker run -d floor p50/p95/max ms (3)", "500 / 500 / 500")


def test_rows_without_ours() -> None:
    (spawn, floor) = rows(Result(spawns=[5.0], floor=[0.5]))
    assert "p50 10.0x the floor;" in spawn[2] and floor[0].startswith("jupyterhub: docker run")


def test_rows_say_why_nothing_was_measured() -> None:
    skipped = rows(Result(skipped="Docker is not available: no socket"))
    why = "Docker is not available: no socket"
    assert skipped == [("jupyterhub: reference spawn", "did not run", why)]
    failed = rows(Result(errors=["the hub did not come up (exited): node: bad option"]))
    assert failed[0][1] == "no figures" and "errors 1 (the hub did not come up" in failed[0][2]


def test_rows_never_contain_a_cell_separator() -> None:
    for result in (
        Result(spawns=[1.0], floor=[0.5], errors=["bench0: 503 a | b\nc"]),
        Result(skipped="an image could not be built: step 3 | npm\nfailed"),
    ):
        for row in rows(result):
            assert all("|" not in cell and "\n" not in cell for cell in row)
