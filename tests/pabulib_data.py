"""The shared real elections (../shared/data/pabulib), read from where they are, never copied."""

from pathlib import Path

PABULIB_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "pabulib"


def pabulib_files() -> list[Path]:
    files = sorted(PABULIB_DIR.glob("*.pb"))
    assert files, f"no pabulib files in {PABULIB_DIR}: the shared data folder is missing"
    return files


def pabulib_file(stem: str) -> Path:
    path = PABULIB_DIR / f"{stem}.pb"
    assert path.exists(), path
    return path
