"""The rater team's commands: `team` shows and changes a study's settings (a bad value is one line and
changes nothing), `rater-groups` compares the groups' shares, `agreement` adds gold and repeats."""

from __future__ import annotations

import json

import pytest
from helpers import make_images, make_run, run_cli, three_raters

from sdaudit.analysis.rater_quality import group_comparison
from sdaudit.scheme import Annotation
from sdaudit.store import Store
from sdaudit.store.team import RATERS_TEXT, Team, TeamSettings


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    with Store.open(home) as store:
        store.add_run(make_run())
        store.add_images(make_images(seeds=range(40)))
        rows = three_raters(40)
        rows["image_id"] += 1
        rows["confidence"] = "high"
        store.save_annotations(rows)
        team = Team(store)
        team.set_settings("default", TeamSettings(rater_fields=("region",)))
        for rater, region in (("ana", "north"), ("ben", "south"), ("cai", "south")):
            team.save_profile("default", rater, {"region": region}, consented=True)
        team.set_gold("default", 2, Annotation(True, "female", 3))
        team.save_repeat(2, "ana", Annotation(True, "male", 3))
    return home


def test_team_shows_and_changes_the_settings(home):
    shown = run_cli("team", "--study", "default", "--home", str(home), check=True).stdout.strip()
    assert shown == ("study default: 1 rater per image; repeats: none; adjudicate when person present split; "
                     "gender differs; MST spread 2 or more; lighter / darker differs; rater-group fields: region")
    changed = run_cli("team", "--study", "default", "--raters-per-image", "3", "--repeat-every", "20",
                      "--gender-rule", "off", "--json", "--home", str(home), check=True)
    assert json.loads(changed.stdout) == {"study": "default", "raters_per_image": 3, "repeat_every": 20,
                                          "disagree_mst_spread": 2, "disagree_gender": False, "disagree_person": True,
                                          "rater_fields": ["region"], "human_sample": None}
    refused = run_cli("team", "--study", "default", "--raters-per-image", "0", "--home", str(home))
    assert refused.returncode == 2 and refused.stderr == f"error: {RATERS_TEXT.format(most=50, value=0)}\n"
    with Store.open(home) as store:
        assert Team(store).settings("default").raters_per_image == 3, "unchanged by the refused value"


def test_rater_groups_prints_the_comparison(home):
    # seven more raters (ana's answers): north ana + four, south ben and cai, "Atlantis" one, two gave no
    # answer; groups of fewer than five raters are pooled as "other" (five raters), the CLI included
    with Store.open(home) as store:
        ana = store.annotations().query("rater == 'ana'")[["image_id", "person_present", "gender", "mst",
                                                            "skin_binary", "confidence"]]
        team = Team(store)
        for number in range(7):
            store.save_annotations(ana.assign(rater=f"extra{number}"))
            if number < 5:
                team.save_profile("default", f"extra{number}", {"region": "north" if number < 4 else "Atlantis"},
                                  consented=True)
    text = run_cli("rater-groups", "--study", "default", "--field", "region", "--home", str(home), check=True).stdout
    assert "Groups of fewer than 5 raters are pooled as “other”" in text
    assert "Atlantis" not in text and "south" not in text
    assert {line.split()[0] for line in text.splitlines()[2:]} == {"other"}, "other minus north, per group"
    result = run_cli("rater-groups", "--study", "default", "--field", "region", "--method", "wilson", "--json",
                     "--home", str(home), check=True)
    rows = json.loads(result.stdout)
    with Store.open(home) as store:
        expected = group_comparison(store.annotations(), Team(store).rater_groups("default"), "region",
                                    method="wilson").differences
    assert [row["rater_group"] for row in rows] == list(expected["run"]) and {row["reference"] for row in rows} == {"north"}
    assert [row["low"] for row in rows] == pytest.approx(list(expected["low"]))
    unknown = run_cli("rater-groups", "--study", "default", "--field", "age", "--home", str(home))
    assert unknown.returncode == 2 and "asks no rater-group field 'age'; its fields: region" in unknown.stderr
    text = run_cli("rater-groups", "--study", "default", "--field", "region", "--home", str(home), check=True).stdout
    assert "Share in the reference" in text and "Clearly different" in text and "share_first" not in text


def test_agreement_adds_gold_and_repeats(home):
    text = run_cli("agreement", "--study", "default", "--home", str(home), check=True).stdout
    assert "each rater against the gold images" in text and "each rater against their own repeats" in text
