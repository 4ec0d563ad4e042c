"""Resource names and tags: the contract teardown relies on."""

import pytest

from helpers import naming


def test_names_read_back_into_their_parts():
    name = naming.resource_name("dev", "16", "fn")
    assert name == "scd-dev-16-fn"
    assert naming.parse_name(name) == naming.NameParts("dev", "16", "fn")
    assert naming.parse_name("scd-dev-16-orders-table") == naming.NameParts(
        "dev", "16", "orders-table"
    )


def test_foreign_names_are_not_ours():
    for foreign in ("orders", "scd-16-fn", "scd-Dev-16-fn", "xscd-dev-16-fn", "scd-dev-1-fn"):
        assert naming.parse_name(foreign) is None


def test_long_names_are_shortened_stably_within_the_limit():
    long = naming.resource_name("alice1", "22", "a-very-long-target-group-name", max_length=32)
    assert len(long) <= 32
    assert long == naming.resource_name("alice1", "22", "a-very-long-target-group-name", 32)
    assert long != naming.resource_name("alice1", "22", "a-very-long-target-group-nama", 32)
    assert naming.parse_name(long).run_id == "alice1"


def test_tags_carry_course_pattern_and_run():
    tags = naming.course_tags("dev", "19")
    assert tags == {"course": naming.COURSE, "pattern": "19", "run_id": "dev"}
    assert naming.tag_list(tags)[0] == {"Key": "course", "Value": naming.COURSE}
    assert naming.tag_list(tags, "key", "value")[1] == {"key": "pattern", "value": "19"}


@pytest.mark.parametrize("bad", ["", "Dev", "my-run", "a" * 13, "run id"])
def test_bad_run_ids_are_refused_with_the_rule(bad):
    with pytest.raises(ValueError, match="lowercase letters or digits"):
        naming.resource_name(bad, "16", "fn")


def test_bad_pattern_is_refused():
    with pytest.raises(ValueError, match="two digits"):
        naming.resource_name("dev", "7", "fn")
