"""The words of the results page, in Dutch and English (one dict per language, same keys).

Kept here, in one module, until the project has a message catalogue; a test checks that
every key has both languages. Placeholders are `str.format` fields.
"""

TEXT: dict[str, dict[str, str]] = {
    "nl": {
        "page_title": "Uitslag: {title}",
        "summary": (
            "Budget {budget}, besteed {spent}, over {remaining}. {ballots} stemmen. "
            "De uitslag volgt de regel: {rule}."
        ),
        "published_at": "Gepubliceerd op {date}.",
        "rule_greedy": "meeste stemmen eerst (greedy)",
        "rule_mes": "Methode van Gelijke Delen (MES)",
        "projects_heading": "Projecten",
        "projects_caption": "Alle projecten op volgorde, met stemmen, kosten en of ze gekozen zijn",
        "col_rank": "Plaats",
        "col_project": "Project",
        "col_votes": "Stemmen",
        "col_cost": "Kosten",
        "col_selected": "Gekozen",
        "yes": "ja",
        "no": "nee",
        "chart_heading": "Stemmen en kosten per project",
        "chart_title": "Stemmen en kosten per project: {title}",
        "chart_desc": (
            "Staafdiagram met per project twee staven: het aantal stemmen en de kosten. "
            "Gekozen projecten zijn gemarkeerd met een vinkje. De tabel Projecten bevat "
            "dezelfde cijfers."
        ),
        "chart_legend_votes": "stemmen",
        "chart_legend_cost": "kosten",
        "chart_selected": "gekozen",
        "comparison_heading": "Vergelijking van de regels",
        "comparison_caption": (
            "Wat elke regel met dezelfde stemmen zou kiezen; de officiële regel is {rule}"
        ),
        "col_figure": "Cijfer",
        "official": "officieel",
        "row_selected": "Gekozen projecten",
        "row_spent": "Besteed",
        "row_with_choice": "Stemmers met minstens één gekozen project",
        "row_per_voter": "Gekozen projecten per stemmer (gemiddeld)",
        "row_mean_share": "Deel van de gekozen kosten van een stem dat doorgaat (gemiddeld)",
        "row_gini": "Ongelijkheid van dat deel over stemmers (Gini, 0 = gelijk)",
        "fairness_heading": "Hoeveel van hun keuzes kregen stemmers?",
        "fairness_caption": "Aantal stemmers naar het aantal van hun keuzes dat gekozen is",
        "col_funded_choices": "Gekozen keuzes",
        "explanations_heading": "Waarom won of verloor een project?",
        "explanations_intro": "Volgens de officiële regel, {rule}:",
        "explanations_other": "Volgens de andere regel, {rule}",
        "explanations_missing": "Voor deze uitslag zijn geen uitleggen bewaard.",
        "greedy_selected": (
            "Gekozen: toen het aan de beurt was, was er nog {left} over en het kost {cost}."
        ),
        "greedy_did_not_fit": (
            "Niet gekozen: toen het aan de beurt was, was er nog {left} over, "
            "te weinig voor {cost}."
        ),
        "mes_selected": (
            "Gekozen in ronde {round}: elke voorstander betaalde {share} ({full} betaalden "
            "dat volledig, {all} betaalden alles wat ze nog hadden, want dat was minder)."
        ),
        "mes_underfunded": (
            "Niet gekozen: de voorstanders hadden samen nog {left}, {shortfall} te weinig voor "
            "{cost}."
        ),
        "no_votes": "Niet gekozen: het kreeg geen stemmen.",
        "would_win": "Het was gekozen als het ten hoogste {cost} had gekost.",
        "would_not_win": "Bij geen enkele lagere prijs was het gekozen.",
        "verify_heading": "Zelf narekenen",
        "verify_text": (
            "De digest is een SHA-256 over de stemmen, de projecten en de uitkomst: iedereen "
            "kan hem met de export narekenen."
        ),
        "digest": "Digest",
        "link_csv": "Projecten als CSV (spreadsheet)",
        "link_pb": "Alle stemmen in pabulib-formaat",
        "link_json": "De uitslag als JSON",
        "link_svg": "Alleen de grafiek (SVG, om in te sluiten)",
        "language_switch": "English",
    },
    "en": {
        "page_title": "Results: {title}",
        "summary": (
            "Budget {budget}, spent {spent}, left {remaining}. {ballots} ballots. "
            "The outcome follows the rule: {rule}."
        ),
        "published_at": "Published on {date}.",
        "rule_greedy": "most votes first (greedy)",
        "rule_mes": "Method of Equal Shares (MES)",
        "projects_heading": "Projects",
        "projects_caption": "Every project in rank order, with votes, cost and whether it won",
        "col_rank": "Rank",
        "col_project": "Project",
        "col_votes": "Votes",
        "col_cost": "Cost",
        "col_selected": "Selected",
        "yes": "yes",
        "no": "no",
        "chart_heading": "Votes and cost per project",
        "chart_title": "Votes and cost per project: {title}",
        "chart_desc": (
            "Bar chart with two bars per project: the number of votes and the cost. Selected "
            "projects are marked with a check mark. The Projects table holds the same figures."
        ),
        "chart_legend_votes": "votes",
        "chart_legend_cost": "cost",
        "chart_selected": "selected",
        "comparison_heading": "The rules compared",
        "comparison_caption": (
            "What each rule would select from the same ballots; the official rule is {rule}"
        ),
        "col_figure": "Figure",
        "official": "official",
        "row_selected": "Projects selected",
        "row_spent": "Spent",
        "row_with_choice": "Voters with at least one selected project",
        "row_per_voter": "Selected projects per voter (mean)",
        "row_mean_share": "Share of a ballot's chosen cost that is funded (mean)",
        "row_gini": "Inequality of that share across voters (Gini, 0 = equal)",
        "fairness_heading": "How many of their choices did voters get?",
        "fairness_caption": "Voters by how many of their choices were selected",
        "col_funded_choices": "Choices selected",
        "explanations_heading": "Why did a project win or lose?",
        "explanations_intro": "Under the official rule, {rule}:",
        "explanations_other": "Under the other rule, {rule}",
        "explanations_missing": "No explanations were kept with these results.",
        "greedy_selected": "Selected: when its turn came, {left} was left and it costs {cost}.",
        "greedy_did_not_fit": (
            "Not selected: when its turn came, {left} was left, not enough for {cost}."
        ),
        "mes_selected": (
            "Selected in round {round}: each supporter paid {share} ({full} paid that in "
            "full, {all} paid all they had left, which was less)."
        ),
        "mes_underfunded": (
            "Not selected: its supporters had {left} left between them, {shortfall} short of "
            "{cost}."
        ),
        "no_votes": "Not selected: it received no votes.",
        "would_win": "It would have been selected at a cost of {cost} or less.",
        "would_not_win": "No lower cost would have made it win.",
        "verify_heading": "Check it yourself",
        "verify_text": (
            "The digest is a SHA-256 over the ballots, the projects and the outcome: anyone "
            "can recompute it from the export."
        ),
        "digest": "Digest",
        "link_csv": "Projects as CSV (spreadsheet)",
        "link_pb": "Every ballot in pabulib format",
        "link_json": "The results as JSON",
        "link_svg": "The chart alone (SVG, for embedding)",
        "language_switch": "Nederlands",
    },
}
