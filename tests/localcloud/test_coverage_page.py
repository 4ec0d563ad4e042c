"""The coverage page is generated from the providers and must be current."""

from localcloud import coverage
from localcloud.services import all_services, provider_classes


def test_committed_coverage_page_is_current():
    expected = coverage.render(all_services())
    assert coverage.PAGE.read_text() == expected, (
        "docs/coverage.md is stale: run `python -m localcloud coverage` and commit it"
    )


def test_every_provider_documents_its_differences_from_aws():
    for provider in provider_classes():
        differences = coverage._differences(provider)
        assert differences and "a bug" not in differences[0], provider.__name__


def test_provider_operations_are_marked_as_provider_served():
    page = coverage.render(all_services())
    assert "| cloudwatch | GetMetricData | provider |" in page
    assert "| dynamodb | GetItem | provider |" in page
    assert "| dynamodb | DescribeTable | moto |" in page
