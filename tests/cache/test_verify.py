"""The verification step refuses each kind of different question and accepts each kind of same question."""

from __future__ import annotations

import pytest

from infermux.cache.verify import is_typo, verify

SAME = [
    ("What is the capital of France?", "what's the capital of france"),  # case, contraction
    ("How do I bake bread at home?", "At home, how do I bake bread?"),  # reorder
    ("How do I bake bread at home?", "How do I bkae bread at home?"),  # typo (swap)
    ("How do I bake bread at home?", "Can you please tell me how I can bake bread at home? Thanks!"),  # verbose
    ("How many calories are in two eggs?", "How many calories are in 2 eggs?"),  # number words
    ("Is aspirin safe for children?", "Is aspirin safe for kids?"),  # synonym
    ("Convert 5 km to miles", "Convert five kilometers to miles"),  # unit spelling
    ("How to learn Python", "How do I learn Python?"),
]
DIFFERENT = [
    ("Is aspirin safe for children?", "Is aspirin not safe for children?", "negation"),
    ("Is aspirin safe for children?", "Isn't aspirin safe for children?", "negation"),
    ("How many calories are in 2 eggs?", "How many calories are in 3 eggs?", "number"),
    ("What is the second law of thermodynamics?", "What is the first law of thermodynamics?", "number"),
    ("What is the capital of France?", "What is the capital of Germany?", "content"),
    ("Convert 5 km to miles", "Convert 5 km to meters", "content"),
    ("Is coffee good for your heart?", "Is coffee bad for your heart?", "content"),
    ("Flights from Paris to London", "Flights from London to Paris", "direction"),
    ("How do I convert Celsius to Fahrenheit?", "How do I convert Fahrenheit to Celsius?", "direction"),
    ("Is an elephant bigger than a mouse?", "Is a mouse bigger than an elephant?", "direction"),
    ("Did Rome conquer Carthage?", "Did Carthage conquer Rome?", "direction"),
    ("Who was the president of France?", "Who is the president of France?", "tense"),
    ("List all countries in Europe", "List some countries in Europe", "quant"),
    ("Why is the sky blue?", "When is the sky blue?", "question_word"),
    ("What is my IP address?", "What is her IP address?", "person"),
    ("Should I take ibuprofen with food?", "Can I take ibuprofen with food?", "modal"),
    ("What is the weight of an elephant?", "What is the height of an elephant?", "content"),
    ("Best pizza in Naples", "Best pizza in Italy", "content"),
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_same_questions_pass(a: str, b: str) -> None:
    assert verify(a, b).same and verify(b, a).same


@pytest.mark.parametrize(("a", "b", "reason"), DIFFERENT)
def test_different_questions_are_refused_with_the_reason(a: str, b: str, reason: str) -> None:
    v = verify(a, b)
    assert not v.same and v.reason == reason
    assert not verify(b, a).same


def test_strict_refuses_typos_and_fillers() -> None:
    assert not verify("How do I bake bread at home?", "How do I bkae bread at home?", "strict").same
    assert verify("How do I bake bread at home?", "how do i bake bread at home", "strict").same


def test_typo_model() -> None:
    assert is_typo("bread", "braed") and is_typo("chicken", "chiken") and is_typo("market", "narket") is False
    assert not is_typo("weight", "height") and not is_typo("live", "love") and not is_typo("lose", "loose")


def test_letters_and_digits_stay_one_token() -> None:
    assert verify("How do I convert MP4 to MP3?", "How do I convert MP3 to MP4?").reason == "direction"
    assert not verify("Is vitamin B12 good for you?", "Is vitamin B6 good for you?").same
    assert verify("Convert 5km to miles", "Convert 5 km to miles").same


#: the kinds of same question that held-out sets D and E (bench/data/frames_*.py) showed were refused; each
#: example here is new (other words, other topics), so the rules, not those pairs, are tested
SAME_POLITE_AND_FRAMES = [
    ("How do I reset my modem?", "Hello! How do I reset my modem? Thanks a lot!"),  # polite sentences
    ("How do I reset my modem", "Sorry if this is a dumb question, but how do I reset my modem"),  # lead-in
    ("Explain the rules of chess", "Explain the rules of chess Any help is appreciated"),  # unpunctuated sign-off
    ("Which browser is fastest on Linux?", "Hey, quick one. Which browser is fastest on Linux?"),  # "one" no number
    ("Give me a recipe for onion soup", "I need a recipe for onion soup"),  # request frames
    ("Which is cheaper, tea or coffee?", "Which one is cheaper, tea or coffee?"),
    ("How often should I clean my oven?", "How frequently should I clean my oven?"),
    ("How many steps should I walk each day?", "How many steps should I walk daily?"),
    ("Is there a way to recover deleted photos on Android?", "Can I recover deleted photos on Android?"),
    ("What should I wear to a job interview?", "What to wear to a job interview?"),
    ("How long do I boil pasta at 100 degrees?", "How long do I boil pasta at 100 dgerees?"),  # long unit typo
    ("What happens if I pay the invoice late?", "If I pay the invoice late, what happens?"),  # clause order
]


@pytest.mark.parametrize(("a", "b"), SAME_POLITE_AND_FRAMES)
def test_politeness_and_one_meaning_frames_pass(a: str, b: str) -> None:
    assert verify(a, b).same and verify(b, a).same


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # the object of a direction word is its whole phrase (set E's only false hit: "baking soda for baking powder")
        (
            "Can I substitute chicken stock for chicken broth in risotto?",
            "Can I substitute chicken broth for chicken stock in risotto?",
        ),
        # a greeting or thanks that the question is about is not politeness
        ("How do I say thanks", "How do I say cheers"),
        ("How do I say hello in Greek?", "How do I say goodbye in Greek?"),
        # politeness is dropped, the question's own words are not
        ("Hello! Is it safe to fly while pregnant?", "Hello! Is it safe to fly?"),
    ],
)
def test_phrases_and_politeness_never_hide_a_difference(a: str, b: str) -> None:
    assert not verify(a, b).same and not verify(b, a).same
