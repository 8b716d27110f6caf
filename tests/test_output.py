"""The output folder is written atomically, and two writers racing for one new folder cannot both win."""

import subprocess
import sys
import threading

import pytest

from exporter.errors import ExportError
from exporter.output import atomic_output, rename_no_replace


def leftovers(parent, name):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


def test_the_second_of_two_overlapping_writers_fails_and_leaves_nothing(tmp_path):
    target = tmp_path / "out"
    first, second = atomic_output(target, force=False), atomic_output(target, force=False)
    staging_a, staging_b = first.__enter__(), second.__enter__()  # both passed the early "is it free?" check
    (staging_a / "model").write_text("first")
    (staging_b / "model").write_text("second")
    first.__exit__(None, None, None)
    with pytest.raises(ExportError, match=r"out already exists; pass --force"):
        second.__exit__(None, None, None)
    assert (target / "model").read_text() == "first"
    assert leftovers(tmp_path, "out") == []


def test_racing_threads_exactly_one_wins(tmp_path):
    target, barrier, results = tmp_path / "out", threading.Barrier(8), {}

    def writer(number):
        try:
            with atomic_output(target, force=False) as staging:
                (staging / "who").write_text(str(number))
                barrier.wait()
            results[number] = "ok"
        except ExportError as e:
            results[number] = str(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [n for n, r in results.items() if r == "ok"]
    assert len(winners) == 1
    assert all("already exists; pass --force" in r for n, r in results.items() if n not in winners)
    assert (target / "who").read_text() == str(winners[0])
    assert leftovers(tmp_path, "out") == []


def test_rename_never_replaces_an_existing_folder(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()  # empty: a plain rename(2) would replace it
    with pytest.raises(FileExistsError):
        rename_no_replace(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "a").is_dir()


def test_force_replaces(tmp_path):
    target = tmp_path / "out"
    for text in ("old", "new"):
        with atomic_output(target, force=True) as staging:
            (staging / "file").write_text(text)
    assert (target / "file").read_text() == "new"
    assert leftovers(tmp_path, "out") == []


@pytest.mark.e2e
def test_two_concurrent_exports_to_one_folder(tmp_path):
    """Tried as a busy CI would: two `elm-export --size tiny` started together, same --output, no --force."""
    target = tmp_path / "out"
    command = [sys.executable, "-c", "from exporter.cli import export_main; export_main()",
               "--size", "tiny", "--quant", "none", "--output", str(target), "--no-verify", "--quiet",
               "--draft-tokens", "0"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = [(run.wait(timeout=600), *run.communicate()) for run in runs]
    codes = sorted(code for code, _, _ in outcomes)
    assert codes == [0, 1], outcomes
    winner = next(out for code, out, _ in outcomes if code == 0)
    loser_err = next(err for code, _, err in outcomes if code == 1)
    assert winner.startswith("wrote ")
    assert loser_err.strip().splitlines() == [f"elm-export: error: {target} already exists; pass --force to "
                                             "overwrite it or choose another --output"]
    verify = subprocess.run([sys.executable, "-c", "from exporter.cli import verify_main; verify_main()",
                             str(target), "--tokens", "8", "--steps", "2"], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr  # the winner's export, intact
    assert leftovers(tmp_path, "out") == []
