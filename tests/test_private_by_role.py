"""Private by role (issue 24), on a hosted app (admin password set), in AppTest: a rater sees on the
Agreement page their own rows and the others only in aggregate, no gold result (it would tell them
which images are gold), no repeats and no rater group; an admin sees every rater, the gold results and
the rater groups, pooled so that no group of fewer than five raters is shown by its answer."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from helpers import PAGES, make_images, make_run, open_page
from streamlit.testing.v1 import AppTest

from sdaudit.analysis.rater_quality import MIN_GROUP_RATERS, OTHER_GROUP
from sdaudit.present.agreement_tables import OTHER_PAIRS, OTHER_RATERS
from sdaudit.scheme import Annotation
from sdaudit.store import Store
from sdaudit.store.team import Team, TeamSettings

GENDERS = ["ffmm", "fmmm", "ffmf", "ffff", "fmfm", "mmmm", "ffmm", "fmmf", "ffmm", "mfmm", "fffm"]
RATERS = ["ana", "ben", "cai", "dan", "eve", "fay", "gus", "hal", "ivy", "jon", "kim"]
# north: five raters; south: four; "Atlantis": one (jon); kim gave no answer. Shown: north, and
# "other" pooling the six others.
REGIONS = {**dict.fromkeys(RATERS[:5], "north"), **dict.fromkeys(RATERS[5:9], "south"), "jon": "Atlantis"}
PAIRS = len(RATERS) * (len(RATERS) - 1) // 2
FIELDS = 4  # person, gender, MST, lighter / darker


@pytest.fixture
def team_home(locked):
    """``locked`` (admin password set): eleven raters on four images, images 1 and 2 gold, ana's
    repeat of image 1, and each rater's region as above."""
    with Store.open(locked) as store:
        store.add_run(make_run())
        store.add_images(make_images())
        team = Team(store)
        team.set_settings("default", TeamSettings(rater_fields=("region",)))
        for rater, genders in zip(RATERS, GENDERS, strict=True):
            for image_id, gender in zip(range(1, 5), genders, strict=True):
                store.save_annotation(image_id, rater, Annotation(True, {"f": "female", "m": "male"}[gender], 3))
            if rater in REGIONS:
                team.save_profile("default", rater, {"region": REGIONS[rater]}, consented=True)
        team.set_gold("default", 1, Annotation(True, "female", 3))
        team.set_gold("default", 2, Annotation(True, "female", 3))
        team.save_repeat(1, "ana", Annotation(True, "male", 3))
    return locked


def everything_shown(at: AppTest) -> str:
    """All the page's text (headings, captions, alerts) and every table, as one string."""
    kinds = ("markdown", "caption", "info", "success", "warning", "error", "title", "subheader", "header")
    texts = [element.value for kind in kinds for element in at.get(kind)]
    return "\n".join(texts + [frame.value.to_string() for frame in at.dataframe])


def table_with(at: AppTest, *columns: str) -> pd.DataFrame | None:
    return next((frame.value for frame in at.dataframe if set(columns) <= set(frame.value.columns)), None)


def assert_no_gold_repeats_or_groups(at: AppTest) -> None:
    shown = everything_shown(at)
    for column in ("Gold images rated", "Repeats answered", "Rater group"):
        assert table_with(at, column) is None, f"a rater sees the table with {column!r}"
    assert "against the gold images" not in shown and "No rater has answered a gold image" not in shown
    for answer in ("north", "south", "Atlantis"):
        assert answer not in shown, f"a rater sees the rater-group answer {answer!r}"
    assert not any(box.label == "Rater-group field" for box in at.selectbox)


def unlocked(page: str) -> AppTest:
    """``page`` opened by an admin: the password given on the Team page, then the page chosen."""
    at = open_page("team")
    next(box for box in at.text_input if box.label == "Admin password").input("s3cret")
    next(button for button in at.button if button.label == "Unlock").click().run()
    at.switch_page(str(PAGES / f"{page}.py")).run()
    assert not at.exception, at.exception
    return at


def test_a_rater_sees_their_own_pairs_and_the_others_only_in_aggregate(team_home):
    at = open_page("agreement", rater="ana")
    assert_no_gold_repeats_or_groups(at)
    assert "shown to admins only" in everything_shown(at)

    pairs = table_with(at, "Rater", "Other rater")
    others = OTHER_PAIRS.format(count=PAIRS - (len(RATERS) - 1))
    assert len(pairs) == FIELDS * len(RATERS)  # per field: ana's ten pairs, then one row for the other 45
    assert set(pairs["Rater"]) == {"ana", others}
    assert set(pairs.loc[pairs["Rater"] == "ana", "Other rater"]) == set(RATERS) - {"ana"}
    assert set(pairs.loc[pairs["Rater"] == others, "Other rater"]) == {""}, "the others' pairs are not named"
    raters = table_with(at, "Rater", "Agreement with the others")
    assert set(raters["Rater"]) == {"ana", OTHER_RATERS.format(count=len(RATERS) - 1)}

    results = open_page("results", rater="ana")
    assert not any(expander.label == "Shares as seen by each rater group" for expander in results.expander)
    assert "Atlantis" not in everything_shown(results) and "north" not in everything_shown(results)


def test_a_rater_without_a_name_sees_only_aggregates(team_home):
    at = open_page("agreement")
    assert_no_gold_repeats_or_groups(at)
    pairs = table_with(at, "Rater", "Other rater")
    assert pairs["Rater"].tolist() == [OTHER_PAIRS.format(count=PAIRS)] * FIELDS
    assert set(pairs["Other rater"]) == {""}
    named = re.findall(rf"\b({'|'.join(RATERS)})\b", everything_shown(at))
    assert not named, f"raters named: {named}"


def test_an_admin_sees_every_rater_the_gold_results_and_the_pooled_rater_groups(team_home):
    at = unlocked("agreement")
    assert "shown to admins only" not in everything_shown(at)
    assert len(table_with(at, "Rater", "Other rater")) == FIELDS * PAIRS
    assert set(table_with(at, "Rater", "Agreement with the others")["Rater"]) == set(RATERS)
    gold = table_with(at, "Gold images rated").set_index("Rater")
    assert set(gold.index) == set(RATERS) and gold.loc["ben", "Gold images rated"] == 2
    assert gold.loc["ben", "Gender presentation"].startswith("50% (1 of 2;"), "ben: female, then male"
    assert table_with(at, "Repeats answered")["Rater"].tolist() == ["ana"]

    differences = table_with(at, "Rater group", "Interval method")
    within = table_with(at, "Rater group", "Statistic")
    assert MIN_GROUP_RATERS == 5
    assert set(differences["Rater group"]) == {OTHER_GROUP}, "other minus north"
    assert set(within["Rater group"]) == {"north", OTHER_GROUP}
    shown = everything_shown(at)
    assert "south" not in shown and "Atlantis" not in shown, "groups of fewer than five raters are not named"

    results = unlocked("results")
    expander = next(expander for expander in results.expander if expander.label == "Shares as seen by each rater group")
    assert expander is not None
    assert set(table_with(results, "Rater group", "Interval method")["Rater group"]) == {OTHER_GROUP}
    assert "Atlantis" not in everything_shown(results)


def test_the_other_pairs_row_holds_the_median_of_each_column():
    from helpers import three_raters

    from sdaudit.analysis.agreement import agreement
    from sdaudit.present.agreement_tables import pairs_table, raters_table

    result = agreement(three_raters(30), bootstrap_rng_seed=1)
    pairs, by_rater = result.pairs, result.by_rater
    shown = pairs_table(result, for_rater="").set_index("Field")
    gender = "Perceived gender presentation"
    rows = pairs[pairs["field"] == "gender"]
    assert shown.loc[gender, "Images"] == round(rows["images"].median())
    assert shown.loc[gender, "Agreement"] == f"{rows['percent_agreement'].median():.1%}"
    assert shown.loc[gender, "Gwet's AC1"] == f"{rows['gwet_ac1'].median():.3f}"
    mine = pairs_table(result, for_rater="cai")
    mine = mine[mine["Field"] == gender]
    assert mine[["Rater", "Other rater"]].values.tolist() == [["cai", "ana"], ["cai", "ben"],
                                                               [OTHER_PAIRS.format(count=1), ""]]
    ana_ben = rows[(rows["rater_a"] == "ana") & (rows["rater_b"] == "ben")].iloc[0]
    assert mine.iloc[2]["Krippendorff's α"] == f"{ana_ben['krippendorff_alpha']:.3f}", "the median of one pair"
    others = by_rater[(by_rater["field"] == "gender") & (by_rater["rater"] != "cai")]
    rater_rows = raters_table(result, for_rater="cai").set_index(["Field", "Rater"])
    assert rater_rows.loc[(gender, OTHER_RATERS.format(count=2)), "Agreement with the others"] == \
        f"{others['agreement_with_others'].median():.1%}"
