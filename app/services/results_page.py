"""The published results as a page for residents and councils, and its chart alone.

Rules enforced here:
- only published results are shown (`results_not_published` before), to whoever may see
  the process;
- the page is complete without JavaScript: a server-rendered HTML document in Dutch or
  English (`?lang=` first, then the best of nl/en in Accept-Language, else Dutch);
- accessible: one h1, h2 per section, a caption and header cells on every table, the chart
  an inline SVG with a title and description (and the same figures in the projects table),
  text at least 7:1 and bars at least 4.5:1 against white;
- every text from the results (titles) is escaped; nothing is fetched from elsewhere.
"""

import html
from collections.abc import Sequence

from sqlmodel import Session

from app.core.i18n import LANGUAGES, Language, negotiate
from app.models.result import Explanation, Results
from app.models.user import User
from app.services import processes, results
from app.services.results_page_text import TEXT

VOTES_COLOUR = "#1d4f91"  # 8.1:1 on white
COST_COLOUR = "#9c4100"  # 6.6:1 on white
INK = "#1a1a1a"


def choose_language(lang: str | None, accept_language: str | None) -> Language:
    """`lang` when given; else the nl/en entry of Accept-Language with the highest q;
    else Dutch (the page is first for Groningen's residents)."""
    for known in LANGUAGES:
        if lang == known:
            return known
    return negotiate(accept_language, default="nl")


def html_page(session: Session, *, viewer: User | None, process_id: int, lang: str) -> str:
    process = processes.get_visible(session, process_id=process_id, viewer=viewer)
    shown = results.show(session, viewer=viewer, process_id=process_id)
    return render_html(shown, process.title, lang)


def svg_chart(session: Session, *, viewer: User | None, process_id: int, lang: str) -> str:
    process = processes.get_visible(session, process_id=process_id, viewer=viewer)
    shown = results.show(session, viewer=viewer, process_id=process_id)
    return render_svg(shown, process.title, lang, standalone=True)


# -- formatting ----------------------------------------------------------------------------


def _number(value: float, lang: str, decimals: int = 0) -> str:
    text = f"{value:,.{decimals}f}"
    if lang == "nl":  # 25.000,50
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


def _euros(value: float, lang: str) -> str:
    decimals = 0 if float(value).is_integer() else 2
    return f"€\u00a0{_number(value, lang, decimals)}"


def _percent(share: float, lang: str) -> str:
    return f"{_number(share * 100, lang, 1)}%"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


# -- the chart -------------------------------------------------------------------------------

_LEFT, _BAR_WIDTH, _VALUE_WIDTH = 8, 520, 120
_ROW, _TOP = 62, 40


def render_svg(shown: Results, title: str, lang: str, *, standalone: bool = False) -> str:
    """Per project, in rank order: its title on a line of its own (selected ones bold with a
    check mark), then a bar of its votes and a bar of its cost, each with its figure."""
    t = TEXT[lang]
    projects = shown.projects
    width = _LEFT + _BAR_WIDTH + _VALUE_WIDTH
    height = _TOP + _ROW * max(len(projects), 1) + 6
    most_votes = max((p.votes for p in projects), default=0) or 1
    most_cost = max((p.cost for p in projects), default=0) or 1
    prefix = "" if standalone else "page-"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-labelledby="{prefix}chart-title" '
        f'aria-describedby="{prefix}chart-desc" '
        f'font-family="system-ui, sans-serif" font-size="14" style="max-width:{width}px">',
        f'<title id="{prefix}chart-title">{_e(t["chart_title"].format(title=title))}</title>',
        f'<desc id="{prefix}chart-desc">{_e(t["chart_desc"])}</desc>',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        # legend
        f'<rect x="{_LEFT}" y="10" width="14" height="14" fill="{VOTES_COLOUR}"/>',
        f'<text x="{_LEFT + 20}" y="22" fill="{INK}">{_e(t["chart_legend_votes"])}</text>',
        f'<rect x="{_LEFT + 110}" y="10" width="14" height="14" fill="{COST_COLOUR}"/>',
        f'<text x="{_LEFT + 130}" y="22" fill="{INK}">{_e(t["chart_legend_cost"])}</text>',
        f'<text x="{_LEFT + 220}" y="22" fill="{INK}">✓ {_e(t["chart_selected"])}</text>',
    ]
    for row, p in enumerate(projects):
        y = _TOP + row * _ROW
        label = p.title if len(p.title) <= 70 else p.title[:69] + "…"
        mark = "✓ " if p.selected else ""
        weight = ' font-weight="bold"' if p.selected else ""
        votes_width = round(_BAR_WIDTH * p.votes / most_votes, 1)
        cost_width = round(_BAR_WIDTH * p.cost / most_cost, 1)
        parts += [
            f'<text x="{_LEFT}" y="{y + 14}" fill="{INK}"{weight}>'
            f"{_e(f'{p.rank}. {mark}{label}')}</text>",
            f'<rect x="{_LEFT}" y="{y + 20}" width="{votes_width}" height="16" '
            f'fill="{VOTES_COLOUR}"/>',
            f'<text x="{_LEFT + votes_width + 6}" y="{y + 33}" fill="{INK}" '
            f'font-size="12">{_e(_number(p.votes, lang))} {_e(t["chart_legend_votes"])}</text>',
            f'<rect x="{_LEFT}" y="{y + 38}" width="{cost_width}" height="16" '
            f'fill="{COST_COLOUR}"/>',
            f'<text x="{_LEFT + cost_width + 6}" y="{y + 51}" fill="{INK}" '
            f'font-size="12">{_e(_euros(p.cost, lang))}</text>',
        ]
    parts.append("</svg>")
    body = "\n".join(parts)
    if standalone:
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
    return body


# -- the page --------------------------------------------------------------------------------


def sentence(e: Explanation | None, rule: str, cost: int, lang: str) -> str:
    t = TEXT[lang]
    if e is None:
        return ""
    if e.outcome == "no_votes":
        return t["no_votes"]
    if e.outcome == "selected":
        if rule == "greedy":
            return t["greedy_selected"].format(
                left=_euros(e.budget_left_when_considered or 0, lang), cost=_euros(cost, lang)
            )
        share = round(e.price_per_support.decimal * max(cost, 1), 2) if e.price_per_support else 0
        return t["mes_selected"].format(
            round=e.round,
            share=_euros(share, lang),
            full=_number(e.supporters_paid_in_full or 0, lang),
            all=_number(e.supporters_paid_all_they_had or 0, lang),
        )
    if e.outcome == "did_not_fit":
        why = t["greedy_did_not_fit"].format(
            left=_euros(e.budget_left_when_considered or 0, lang), cost=_euros(cost, lang)
        )
    else:
        why = t["mes_underfunded"].format(
            left=_euros(e.supporters_money_left or 0, lang),
            shortfall=_euros(e.shortfall or 0, lang),
            cost=_euros(cost, lang),
        )
    if e.would_win_at_cost is None:
        return f"{why} {t['would_not_win']}"
    return f"{why} {t['would_win'].format(cost=_euros(e.would_win_at_cost, lang))}"


def _explanation_list(shown: Results, rule: str, lang: str) -> str:
    explanations = shown.rules[rule].explanations if rule in shown.rules else None
    if explanations is None:
        return f"<p>{_e(TEXT[lang]['explanations_missing'])}</p>"
    items = [
        f"<li><strong>{_e(p.title)}</strong>: "
        f"{_e(sentence(explanations.get(str(p.proposal_id)), rule, p.cost, lang))}</li>"
        for p in shown.projects
    ]
    return "<ul>\n" + "\n".join(items) + "\n</ul>"


def _table(caption: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Cells are given escaped; the first cell of each row is its header."""
    head = "".join(f'<th scope="col">{cell}</th>' for cell in header)
    body = "\n".join(
        f'<tr><th scope="row">{row[0]}</th>'
        + "".join(f"<td>{cell}</td>" for cell in row[1:])
        + "</tr>"
        for row in rows
    )
    return (
        f"<table>\n<caption>{caption}</caption>\n<thead><tr>{head}</tr></thead>\n"
        f"<tbody>\n{body}\n</tbody>\n</table>"
    )


def _scroll(table: str, label: str) -> str:
    """A table that scrolls sideways on a narrow screen, in a box the keyboard can reach."""
    return f'<div class="scroll" role="region" tabindex="0" aria-label="{_e(label)}">{table}</div>'


_STYLE = """
body { font-family: system-ui, sans-serif; color: #1a1a1a; background: #ffffff;
       margin: 0; line-height: 1.5; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.6rem; margin: 0.5rem 0; }
h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 2px solid #1d4f91; }
table { border-collapse: collapse; margin: 0.5rem 0; width: 100%; }
.scroll { overflow-x: auto; }
.scroll:focus { outline: 3px solid #1d4f91; }
caption { text-align: left; font-weight: bold; padding: 0.25rem 0; }
th, td { border: 1px solid #6b6b6b; padding: 0.3rem 0.5rem; text-align: left; }
code { word-break: break-all; background: #f2f2f2; padding: 0.1rem 0.3rem; }
a { color: #0b3d91; }
nav { text-align: right; }
details { margin-top: 1rem; }
summary { cursor: pointer; font-weight: bold; }
"""


def render_html(shown: Results, title: str, lang: str) -> str:
    t = TEXT[lang]
    rule_names = {name: t[f"rule_{name}"] for name in ("greedy", "mes")}
    official = rule_names.get(shown.rule, shown.rule)
    other_lang = "en" if lang == "nl" else "nl"

    project_rows = [
        [
            _e(p.rank),
            _e(p.title),
            _e(_number(p.votes, lang)),
            _e(_euros(p.cost, lang)),
            _e(t["yes"] if p.selected else t["no"]),
        ]
        for p in shown.projects
    ]
    projects_table = _table(
        _e(t["projects_caption"]),
        [_e(t[k]) for k in ("col_rank", "col_project", "col_votes", "col_cost", "col_selected")],
        project_rows,
    )

    names = [name for name in ("greedy", "mes") if name in shown.rules]
    header = [_e(t["col_figure"])] + [
        _e(rule_names[n] + (f" ({t['official']})" if n == shown.rule else "")) for n in names
    ]

    def figure(key: str, value: object) -> list[str]:
        return [_e(t[key]), *(_e(value_of(n, value)) for n in names)]

    def value_of(name: str, what: object) -> str:
        r = shown.rules[name]
        if what == "selected":
            return _number(len(r.selected_ids), lang)
        if what == "spent":
            return _euros(r.spent, lang)
        if what == "with_choice":
            return _percent(r.voters_with_a_funded_choice, lang)
        if what == "per_voter":
            return _number(r.funded_choices_per_voter, lang, 2)
        if r.fairness is None:
            return "\u2013"
        if what == "mean_share":
            return _percent(r.fairness.mean_funded_share, lang)
        return _number(r.fairness.gini_funded_share, lang, 4)

    comparison = _table(
        _e(t["comparison_caption"].format(rule=official)),
        header,
        [
            figure("row_selected", "selected"),
            figure("row_spent", "spent"),
            figure("row_with_choice", "with_choice"),
            figure("row_per_voter", "per_voter"),
            figure("row_mean_share", "mean_share"),
            figure("row_gini", "gini"),
        ],
    )

    histograms = {n: shown.rules[n].fairness for n in names}
    most = max(
        (int(k) for f in histograms.values() if f for k in f.funded_choices_histogram), default=-1
    )
    fairness_section = ""
    if most >= 0:
        fairness_rows = [
            [
                _e(str(k)),
                *(
                    _e(_number(f.funded_choices_histogram.get(str(k), 0), lang) if f else "\u2013")
                    for f in histograms.values()
                ),
            ]
            for k in range(most + 1)
        ]
        fairness_section = f"<h2>{_e(t['fairness_heading'])}</h2>\n" + _scroll(
            _table(
                _e(t["fairness_caption"]),
                [_e(t["col_funded_choices"])] + [_e(rule_names[n]) for n in names],
                fairness_rows,
            ),
            t["fairness_caption"],
        )

    others = [n for n in names if n != shown.rule]
    other_explanations = "".join(
        f"<details><summary>{_e(t['explanations_other'].format(rule=rule_names[n]))}</summary>\n"
        f"{_explanation_list(shown, n, lang)}\n</details>"
        for n in others
    )
    published = (
        t["published_at"].format(date=shown.published_at.strftime("%Y-%m-%d %H:%M UTC"))
        if shown.published_at
        else ""
    )
    summary = t["summary"].format(
        budget=_euros(shown.budget, lang),
        spent=_euros(shown.spent, lang),
        remaining=_euros(shown.remaining, lang),
        ballots=_number(shown.ballot_count, lang),
        rule=official,
    )
    heading = t["page_title"].format(title=title)
    switch = (
        f'<a href="?lang={other_lang}" hreflang="{other_lang}" lang="{other_lang}">'
        f"{_e(t['language_switch'])}</a>"
    )
    return f"""<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(heading)}</title>
<style>{_STYLE}</style>
</head>
<body>
<main>
<nav>{switch}</nav>
<h1>{_e(heading)}</h1>
<p>{_e(summary)} {_e(published)}</p>
<h2>{_e(t["projects_heading"])}</h2>
{_scroll(projects_table, t["projects_caption"])}
<h2>{_e(t["chart_heading"])}</h2>
<figure>
{render_svg(shown, title, lang)}
</figure>
<h2>{_e(t["comparison_heading"])}</h2>
{_scroll(comparison, t["comparison_heading"])}
{fairness_section}
<h2>{_e(t["explanations_heading"])}</h2>
<p>{_e(t["explanations_intro"].format(rule=official))}</p>
{_explanation_list(shown, shown.rule, lang)}
{other_explanations}
<h2>{_e(t["verify_heading"])}</h2>
<p>{_e(t["verify_text"])}</p>
<p>{_e(t["digest"])}: <code>{_e(shown.digest)}</code></p>
<ul>
<li><a href="results.csv">{_e(t["link_csv"])}</a></li>
<li><a href="results.pb">{_e(t["link_pb"])}</a></li>
<li><a href="results">{_e(t["link_json"])}</a></li>
<li><a href="results.svg?lang={lang}">{_e(t["link_svg"])}</a></li>
</ul>
</main>
</body>
</html>
"""
