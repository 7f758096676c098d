"""The real elections the tests read: small and medium pabulib files carried in the repository
(tests/data/pabulib, see its README), so a clone tests with nothing beside it."""

from pathlib import Path

PABULIB_DIR = Path(__file__).resolve().parent / "data" / "pabulib"


def pabulib_files() -> list[Path]:
    files = sorted(PABULIB_DIR.glob("*.pb"))
    assert files, f"no pabulib files in {PABULIB_DIR}: the test data is missing from the checkout"
    return files


def pabulib_file(stem: str) -> Path:
    path = PABULIB_DIR / f"{stem}.pb"
    assert path.exists(), path
    return path
