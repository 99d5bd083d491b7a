from tandem.training.curation.domains import DEFAULT_DOMAIN_RULES, DomainRule, DomainTagger
from tandem.training.curation.normalize import words


def tag(text, rules=DEFAULT_DOMAIN_RULES):
    return DomainTagger(rules).tag(text, words(text))


def test_default_rules():
    assert tag("Write a Python function that sorts a list.") == "code"
    assert tag("Use the bash command line to schedule a cron job.") == "automation"
    assert tag("How many apples are left if I eat 3 of 12?") == "reasoning"
    assert tag("Describe a sunrise over the ocean.") == "general"


def test_answers_count_and_phrases_need_both_words():
    assert tag("Reverse a string.\n```\nprint('abc'[::-1])\n```") == "code"
    assert tag("The command was given. The line was long.") == "general"  # not "command line"


def test_ties_go_to_the_first_domain_and_rules_are_replaceable():
    rules = {"finance": DomainRule(keywords=["invoice"]), "legal": DomainRule(keywords=["contract"])}
    assert tag("An invoice attached to a contract.", rules) == "finance"
    assert tag("A contract.", rules) == "legal"
