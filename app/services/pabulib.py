"""Reading and writing elections in the pabulib format (pabulib.org/format).

A file has three sections, each a semicolon-separated table with a header row: META
(key;value), PROJECTS (project_id;cost;...) and VOTES (voter_id;vote[;points]). Real files
come with CRLF or mixed line ends, quoted fields, string project ids, and `approval`,
`choose-1` and `cumulative` votes; `ordinal` (ranked) votes are not a ballot type of ours.
Anything malformed or unsupported raises `PabulibError` with the line it was found on.
"""

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from app.core.i18n import Message, _t
from app.services.tally import Election

SUPPORTED_VOTE_TYPES = ("approval", "choose-1", "cumulative")


class PabulibError(Exception):
    """The file is malformed or uses something Wijkbudget does not support."""


@dataclass
class PabulibProject:
    project_id: str
    cost: int
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class PabulibElection:
    meta: dict[str, str]
    projects: list[PabulibProject]  # in file order: the tie-break order
    voter_ids: list[str]
    ballots: list[tuple[tuple[int, int], ...]]  # per voter: (project index, weight), sorted

    @property
    def budget(self) -> int:
        return _whole(self.meta.get("budget", ""), _t("META budget"))

    @property
    def vote_type(self) -> str:
        return self.meta.get("vote_type", "approval")

    @property
    def rule(self) -> str:
        return self.meta.get("rule", "")

    def official_selection(self) -> list[str] | None:
        """The ids marked selected in the file, or None when it has no `selected` column."""
        if not self.projects or "selected" not in self.projects[0].fields:
            return None
        return [p.project_id for p in self.projects if p.fields.get("selected", "0").strip() == "1"]

    def election(self) -> Election:
        return Election.build(self.budget, [p.cost for p in self.projects], self.ballots)


def _whole(text: str, where: Message) -> int:
    if text.isdigit():
        return int(text)
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise PabulibError(
            _t("{where}: {text!r} is not a number", where=where, text=text)
        ) from None
    if value != value.to_integral_value() or value < 0:
        raise PabulibError(_t("{where}: {text!r} is not a whole amount", where=where, text=text))
    return int(value)


def read(path: Path, progress: Callable[[int], None] | None = None) -> PabulibElection:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PabulibError(_t("not UTF-8 text ({reason})", reason=exc.reason)) from None
    except OSError as exc:
        raise PabulibError(str(exc.strerror)) from None
    return parse(text, progress=progress)


def parse(text: str, progress: Callable[[int], None] | None = None) -> PabulibElection:
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=";", quotechar='"', strict=True)
    sections: dict[str, tuple[list[str], list[tuple[int, list[str]]]]] = {}
    current: str | None = None
    header: list[str] | None = None
    try:
        for row in rows:
            if len(row) == 1:
                first = row[0].strip()
                if not first:
                    continue
                if first.upper() in ("META", "PROJECTS", "VOTES"):
                    current, header = first.upper(), None
                    if current in sections:
                        raise PabulibError(
                            _t(
                                "line {line_num}: section {current} appears twice",
                                line_num=rows.line_num,
                                current=current,
                            )
                        )
                    continue
            elif not row:
                continue
            if current is None:
                raise PabulibError(
                    _t("line {line_num}: data before the META section", line_num=rows.line_num)
                )
            if header is None:
                header = [cell.strip() for cell in row]
                sections[current] = (header, [])
                continue
            # Cells are stripped where they are read: stripping every cell of a 90,000-vote
            # file here would cost more than the rest of the parsing.
            sections[current][1].append((rows.line_num, row))
    except csv.Error as exc:
        raise PabulibError(_t("line {line_num}: {exc}", line_num=rows.line_num, exc=exc)) from None
    for name in ("META", "PROJECTS", "VOTES"):
        if name not in sections:
            raise PabulibError(_t("the {name} section is missing", name=name))
    meta = _meta(sections["META"])
    projects = _projects(sections["PROJECTS"])
    vote_type = meta.get("vote_type", "approval")
    if vote_type not in SUPPORTED_VOTE_TYPES:
        supported = ", ".join(SUPPORTED_VOTE_TYPES)
        raise PabulibError(
            _t(
                "vote_type {vote_type!r} is not supported (supported: {supported})",
                vote_type=vote_type,
                supported=supported,
            )
        )
    index = {p.project_id: i for i, p in enumerate(projects)}
    voter_ids, ballots = _votes(sections["VOTES"], index, vote_type, progress)
    election = PabulibElection(meta=meta, projects=projects, voter_ids=voter_ids, ballots=ballots)
    election.budget  # noqa: B018  (validates META budget now, with a clear message)
    return election


def _table(
    section: tuple[list[str], list[tuple[int, list[str]]]], name: str
) -> Iterator[tuple[int, dict[str, str]]]:
    header, rows = section
    for line, row in rows:
        if len(row) != len(header):
            raise PabulibError(
                _t(
                    "line {line}: {name} row has {fields} fields, the header {header}",
                    line=line,
                    name=name,
                    fields=len(row),
                    header=len(header),
                )
            )
        yield line, {key: cell.strip() for key, cell in zip(header, row, strict=True)}


def _meta(section: tuple[list[str], list[tuple[int, list[str]]]]) -> dict[str, str]:
    header, rows = section
    if header[:2] != ["key", "value"]:
        raise PabulibError(_t("the META header must be 'key;value'"))
    meta = {}
    for line, row in rows:
        if len(row) < 2:
            raise PabulibError(_t("line {line}: META row needs a key and a value", line=line))
        meta[row[0].strip()] = ";".join(row[1:]).strip()
    if "budget" not in meta:
        raise PabulibError(_t("META has no budget"))
    return meta


def _projects(section: tuple[list[str], list[tuple[int, list[str]]]]) -> list[PabulibProject]:
    header = section[0]
    for column in ("project_id", "cost"):
        if column not in header:
            raise PabulibError(_t("the PROJECTS header has no {column} column", column=column))
    projects: list[PabulibProject] = []
    seen: set[str] = set()
    for line, row in _table(section, "PROJECTS"):
        project_id = row["project_id"]
        if not project_id or project_id in seen:
            raise PabulibError(
                _t(
                    "line {line}: project id {project_id!r} is empty or repeated",
                    line=line,
                    project_id=project_id,
                )
            )
        seen.add(project_id)
        cost = _whole(row["cost"], _t("line {line}: cost", line=line))
        projects.append(PabulibProject(project_id, cost, row))
    return projects


def _votes(
    section: tuple[list[str], list[tuple[int, list[str]]]],
    index: dict[str, int],
    vote_type: str,
    progress: Callable[[int], None] | None,
) -> tuple[list[str], list[tuple[tuple[int, int], ...]]]:
    header, rows = section
    if "vote" not in header:
        raise PabulibError(_t("the VOTES header has no vote column"))
    cumulative = vote_type == "cumulative"
    if cumulative and "points" not in header:
        raise PabulibError(_t("a cumulative election needs a points column in VOTES"))
    width = len(header)
    vote_at = header.index("vote")
    points_at = header.index("points") if cumulative else -1
    id_at = header.index("voter_id") if "voter_id" in header else -1
    voter_ids: list[str] = []
    ballots: list[tuple[tuple[int, int], ...]] = []
    ones = [(1,) * k for k in range(len(index) + 1)]
    for n, (line, row) in enumerate(rows, start=1):
        if len(row) != width:
            raise PabulibError(
                _t(
                    "line {line}: VOTES row has {fields} fields, the header {width}",
                    line=line,
                    fields=len(row),
                    width=width,
                )
            )
        chosen = _id_list(row[vote_at])
        try:
            indices = [index[project_id] for project_id in chosen]
        except KeyError as exc:
            raise PabulibError(
                _t(
                    "line {line}: vote for unknown project {project!r}",
                    line=line,
                    project=exc.args[0],
                )
            ) from None
        if len(set(indices)) != len(indices):
            raise PabulibError(_t("line {line}: a project is voted for twice", line=line))
        if cumulative:
            points = _id_list(row[points_at])
            if len(points) != len(chosen):
                raise PabulibError(
                    _t(
                        "line {line}: {projects} projects but {points} points",
                        line=line,
                        projects=len(chosen),
                        points=len(points),
                    )
                )
            weights: Sequence[int] = [
                _whole(p, _t("line {line}: points", line=line)) for p in points
            ]
        else:
            if vote_type == "choose-1" and len(chosen) > 1:
                raise PabulibError(
                    _t(
                        "line {line}: a choose-1 vote names {projects} projects",
                        line=line,
                        projects=len(chosen),
                    )
                )
            weights = ones[len(indices)]
        voter_ids.append(row[id_at].strip() if id_at >= 0 else str(n))
        ballots.append(tuple(sorted(zip(indices, weights, strict=True))))
        if progress is not None and n % 10_000 == 0:
            progress(n)
    return voter_ids, ballots


def _id_list(text: str) -> list[str]:
    parts = text.split(",")
    if " " in text or "\t" in text or not parts[-1] or not parts[0]:
        parts = [part.strip() for part in parts if part.strip()]
    return parts


@dataclass(frozen=True)
class ExportProject:
    project_id: str
    cost: int
    votes: int  # ballots that chose it
    name: str
    selected: bool
    score: int | None = None  # total points, cumulative elections only


def write(
    meta: dict[str, str],
    projects: Sequence[ExportProject],
    votes: Iterable[tuple[str, Sequence[tuple[str, int]]]],
    *,
    cumulative: bool,
) -> str:
    """An election in pabulib format. META keeps the given order; PROJECTS keep theirs
    (checkers break ties by file order); VOTES are (voter id, [(project id, points)])."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    out.write("META\n")
    writer.writerow(["key", "value"])
    for key, value in meta.items():
        writer.writerow([key, value])
    out.write("PROJECTS\n")
    if cumulative:
        writer.writerow(["project_id", "cost", "votes", "score", "name", "selected"])
        writer.writerows(
            [p.project_id, p.cost, p.votes, p.score or 0, p.name, int(p.selected)] for p in projects
        )
    else:
        writer.writerow(["project_id", "cost", "votes", "name", "selected"])
        writer.writerows([p.project_id, p.cost, p.votes, p.name, int(p.selected)] for p in projects)
    out.write("VOTES\n")
    writer.writerow(["voter_id", "vote", "points"] if cumulative else ["voter_id", "vote"])
    for voter_id, choices in votes:
        row = [voter_id, ",".join(pid for pid, _ in choices)]
        if cumulative:
            row.append(",".join(str(points) for _, points in choices))
        writer.writerow(row)
    return out.getvalue()
