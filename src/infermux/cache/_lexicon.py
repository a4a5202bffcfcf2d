"""Word lists and tables of the semantic cache's verification step (:mod:`infermux.cache.verify`)."""

from __future__ import annotations

import re

_CONTRACTIONS = (
    (r"\bcan'?t\b", "can not"),
    (r"\bwon'?t\b", "will not"),
    (r"\bshan'?t\b", "shall not"),
    (r"n't\b", " not"),
    (r"'re\b", " are"),
    (r"'ve\b", " have"),
    (r"'ll\b", " will"),
    (r"'d\b", " would"),
    (r"'m\b", " am"),
    (r"\b(what|who|where|when|how|why|that|there|it|he|she)'s\b", r"\1 is"),
    (r"'s\b", ""),
    (r"\bcannot\b", "can not"),
)
#: rewrites of common question frames to one form (applied before the filler phrases)
#: each with the words one of which it needs (a set look-up spares the text most of the patterns)
_REWRITES = tuple(
    (re.compile(p), r, frozenset(t.split()))
    for p, r, t in (
        (r"\bwhat is the (way|method|procedure) to\b", "how to", "way method procedure"),
        (r"\bin what way (can|do|should) i\b", "how do i", "way"),
        (r"\bis it (okay|ok|alright|fine|possible) (for me )?to\b", "can i", "okay ok alright fine possible"),
        (r"\bam i (allowed|able) to\b", "can i", "allowed able"),
        (r"\bwhat number of\b", "how many", "number"),
        (r"\bor not\b", " ", "not"),
        # requests phrased as orders or needs ask the same as the bare question ("give me a recipe for...")
        (r"(?:^|(?<=, )|(?<=\. ))(can you |could you |would you )?(give|show|send|find|get) me\b", " ", "me"),
        (r"(?:^|(?<=, )|(?<=\. ))i (need|want|would like|am looking for)\b(?! to)", " ", "need want like looking"),
        # frames of one meaning
        (r"\b(do|does) (i|you|we) need to\b", r"should \2", "need"),
        (r"\bcan (i|you|we) safely\b", "is it safe to", "safely"),
        (r"\bwhat is the distance (from|between)\b", r"how far is it \1", "distance"),
        (r"\bwhat does (it|this|that) cost\b", r"how much does \1 cost", "cost"),
        (r"\bwhat is the (fee|cost|price) (for|of)\b", "how much does it cost to", "fee cost price"),
        (r"\bis there (a|any) way to\b", "can i", "way"),
        (r"\b(what|where|which|when) to\b", r"\1 should i", "to"),
        (r"\b(which|this|that|each|every|any) one\b", r"\1", "one"),
        (r"\b(happens?|happened) when\b", r"\1 if", "happens happen happened"),
        (r"\bcomes? with\b", "include", "come comes"),
        (r"\bleast expensive\b", "cheapest", "least"),
        (r"\bless expensive\b", "cheaper", "less"),
        (r"\baged (\d+)\b", r"\1 year old", "aged"),
        (r"\b(each|every|per) (day|week|month|year)\b", r"\2ly", "day week month year"),
        (r"\bdaily\b", "dayly", "daily"),
        (r"\bannually\b", "yearly", "annually"),
    )
)
#: a sentence or lead-in made only of these words, with at least one anchor, is politeness, not question:
#: "Hello!", "Thanks a lot!", "Sorry if this is a silly question, but ...", "Need some help here."
_PHATIC_ANCHOR = frozenset(
    (
        *("hi", "hello", "hey", "thanks", "thank", "thx", "cheers", "sorry", "apologies", "help", "appreciated"),
        *("appreciate", "question", "wondering", "curious", "quick", "regards", "greetings"),
    )
)
#: the words that open (greetings, apologies) or close (thanks) a message: a run of politeness words at the
#: start or end of a message with one of these is stripped even without punctuation ("... by date Thanks a lot")
_PHATIC_OPEN = frozenset(("hi", "hello", "hey", "sorry", "apologies", "greetings"))
_PHATIC_CLOSE = frozenset(("thanks", "thank", "thx", "cheers", "appreciated", "appreciate", "regards"))
_PHATIC = _PHATIC_ANCHOR | frozenset(
    (
        *("there", "you", "so", "very", "much", "a", "lot", "in", "advance", "for", "your", "any", "is", "be"),
        *("would", "will", "greatly", "really", "if", "this", "silly", "dumb", "stupid", "basic", "naive", "one"),
        *("need", "needs", "some", "here", "i", "have", "has", "but", "just", "was", "been", "am", "something"),
        *("about", "hope", "someone", "anyone", "can", "all", "everyone", "folks", "guys", "ok", "okay", "well"),
        *("kind", "best", "the", "me", "my", "it", "that", "and", "all", "again", "ve", "m", "s", "d"),
    )
)
_FILLER_PHRASES = tuple(
    re.compile(p)
    for p in (
        r"^(hi|hello|hey)( there)?\b[,!.]?",
        r"\b(can|could|would|will) you (please |kindly )?(tell|show|let) me( know)?\b",
        r"\b(can|could|would|will) you (please |kindly )?(explain|describe|clarify)( to me)?\b",
        r"\bi would like to (know|ask|understand)\b",
        r"\bi (want|need|wanted|needed) to (know|ask|understand)\b",
        r"\bi am (wondering|curious)( about)?\b",
        r"\bi (was|have been) (wondering|curious|thinking)( about this)?\b",
        r"\bdo you (happen to )?know\b",
        r"\b(thanks|thank you)( (so|very) much)?( in advance)?\b",
        r"\b(quick|simple|short) question\b",
        r"\bi have a question\b",
        r"\bjust curious\b",
        r"\bfor a while( now)?\b",
        r"\bif you (do not )?mind\b",
        r"\bany idea\b",
        r"\bhelp me (understand|figure out)\b",
        r"\bplease\b",
        r"\bkindly\b",
    )
)
#: a number glued to a unit ("5km", "10kg") is split before tokenising
_NUMBER_UNIT = re.compile(r"\b(\d+(?:\.\d+)?)(km|kg|mi|lbs?|ml|cm|mm|ft|hrs?|mins?|kb|mb|gb|tb|g|l|m|s)\b")
#: letters and digits mixed ("mp4", "b12", "5g", "h2o") are one token; then symbols, numbers, words, and
#: commas (clause boundaries: a direction word's object or a verb's neighbour never lies across one)
_TOKEN = re.compile(r"[a-z]+\d[a-z\d]*|\d+[a-z][a-z\d]*|[$€£%°]|\d+(?:[.,]\d+)*|[A-Za-z]+|,")

_NEGATIONS = frozenset(["not", "no", "never", "none", "nobody", "nothing", "nowhere", "neither", "nor", "without"])
_WH = {"what": "what", "which": "what", "why": "why", "when": "when", "where": "where", "who": "who"}
_WH.update({"whom": "who", "whose": "whose", "how": "how"})
_PERSON = {w: "1" for w in ["i", "me", "my", "mine", "myself", "we", "us", "our", "ours", "ourselves"]}
_PERSON.update({w: "2" for w in ["you", "your", "yours", "yourself", "yourselves"]})
_PERSON.update({w: "3m" for w in ["he", "him", "his", "himself"]})
_PERSON.update({w: "3f" for w in ["she", "her", "hers", "herself"]})
_PERSON.update({w: "3p" for w in ["they", "them", "their", "theirs", "themselves"]})
_TENSE = {w: "past" for w in ["was", "were", "did", "had"]}
_TENSE.update({"will": "future", "shall": "future"})
_MODAL = {w: "oblig" for w in ["should", "must", "ought"]}
_MODAL.update({w: "poss" for w in ["can", "could", "may", "might"]})
_QUANT = {
    w: w
    for w in [
        "all",
        "every",
        "each",
        "any",
        "some",
        "most",
        "many",
        "few",
        "several",
        "only",
        "both",
        "either",
        "entire",
        "whole",
    ]
}
_QUANT.update({"everything": "every", "everyone": "every", "anything": "any", "anyone": "any", "always": "always"})
#: verb particles: "turn on" / "turn off", "sign in" / "sign out" ("on" and "in" are also direction words)
_PARTICLE = {w: w for w in ("off", "out", "up", "down", "away", "back")}
_QUANT.update({"sometimes": "sometimes", "usually": "usually", "often": "often", "rarely": "rarely"})
_QUANT.update({"frequently": "often"})
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "am",
        "be",
        "been",
        "being",
        "do",
        "does",
        "doing",
        "done",
        "have",
        "has",
        "having",
        "would",
        "of",
        "in",
        "on",
        "at",
        "for",
        "with",
        "by",
        "about",
        "as",
        "and",
        "or",
        "but",
        "if",
        "so",
        "that",
        "this",
        "these",
        "those",
        "there",
        "here",
        "it",
        "its",
        "itself",
        "to",
        "from",
        "into",
        "than",
        "then",
        "also",
        "too",
        "very",
        "up",
        "out",
        "again",
        "further",
        "once",
        "just",
        "any",
    ]
)
#: words a verbose paraphrase adds without changing the question
_FILLER = frozenset(
    [
        "located",
        "situated",
        "take",
        "please",
        "thanks",
        "thank",
        "exactly",
        "actually",
        "really",
        "basically",
        "simply",
        "tell",
        "know",
        "explain",
        "question",
        "wondering",
        "curious",
        "help",
        "hello",
        "hi",
        "hey",
        "honestly",
        "quick",
        "quickly",
        "briefly",
        "kind",
        "sort",
        "thing",
        "something",
        "way",
        "possible",
        "idea",
        "wanted",
        "want",
        "like",
        "understand",
        "figure",
        "anyone",
        "someone",
        "mean",
        "meaning",
        "exist",
        "using",
        "via",
    ]
)
#: direction words that must appear on both sides or on neither ("before" vs "after eating")
_DIRECTION_MUST = frozenset(
    ("from", "into", "than", "toward", "towards", "onto", "vs", "versus", "before", "after", "against")
)
#: every direction word: where both sides have one, its objects must agree ("from Paris to London")
_DIRECTION = _DIRECTION_MUST | frozenset(("to", "in", "for", "of", "on", "at", "with", "per"))
_ASYMMETRIC = frozenset(
    [
        "beat",
        "defeat",
        "chase",
        "bite",
        "eat",
        "kill",
        "owe",
        "pay",
        "follow",
        "precede",
        "exceed",
        "replace",
        "cause",
        "affect",
        "attack",
        "invade",
        "conquer",
        "hire",
        "fire",
        "sue",
        "teach",
        "marry",
        "inherit",
        "rescue",
    ]
)
_NUMBER_WORDS: dict[str, float] = {
    w: i
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
}
_NUMBER_WORDS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80})
_NUMBER_WORDS.update({"ninety": 90, "dozen": 12, "half": 0.5, "twice": 2, "double": 2, "triple": 3})
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_ORDINALS = {
    w: i + 1
    for i, w in enumerate(
        [
            "first",
            "second",
            "third",
            "fourth",
            "fifth",
            "sixth",
            "seventh",
            "eighth",
            "ninth",
            "tenth",
            "eleventh",
            "twelfth",
        ]
    )
}
_CANON = {
    # units and currencies
    "$": "usd",
    "dollar": "usd",
    "dollars": "usd",
    "usd": "usd",
    "€": "eur",
    "euro": "eur",
    "euros": "eur",
    "£": "gbp",
    "%": "percent",
    "percentage": "percent",
    "°": "degree",
    "degrees": "degree",
    "centigrade": "celsius",
    "c": "celsius",
    "f": "fahrenheit",
    "kilometer": "km",
    "kilometers": "km",
    "kilometre": "km",
    "kilometres": "km",
    "mile": "mile",
    "miles": "mile",
    "mi": "mile",
    "kilogram": "kg",
    "kilograms": "kg",
    "kilo": "kg",
    "kilos": "kg",
    "lbs": "lb",
    "pound": "lb",
    "pounds": "lb",
    "meter": "m",
    "meters": "m",
    "metre": "m",
    "metres": "m",
    "centimeter": "cm",
    "centimeters": "cm",
    "feet": "ft",
    "foot": "ft",
    "inch": "in_",
    "inches": "in_",
    "hours": "hour",
    "hr": "hour",
    "hrs": "hour",
    "minutes": "minute",
    "mins": "minute",
    "seconds": "sec",
    "secs": "sec",
    "liter": "l",
    "liters": "l",
    "litre": "l",
    "litres": "l",
    "gallon": "gal",
    "gallons": "gal",
    "ml": "ml",
    "milliliter": "ml",
    "milliliters": "ml",
    # a small synonym table (general English, both directions map to one word)
    "automobile": "car",
    "cars": "car",
    "purchase": "buy",
    "begin": "start",
    "commence": "start",
    "quick": "fast",
    "rapid": "fast",
    "rapidly": "fast",
    "quickly": "fast",
    "film": "movie",
    "films": "movie",
    "kids": "child",
    "kid": "child",
    "children": "child",
    "physician": "doctor",
    "store": "shop",
    "wealthy": "rich",
    "ill": "sick",
    "assist": "help",
    "utilize": "use",
    "repair": "fix",
    "large": "big",
    "huge": "big",
    "little": "small",
    "tiny": "small",
    "intelligent": "smart",
    "price": "cost",
    "describe": "explain",
    "mistake": "error",
    "pick": "choose",
    "select": "choose",
    "house": "home",
    "picture": "photo",
    "talk": "speak",
    "sufficient": "enough",
    "perhaps": "maybe",
    "frequently": "often",
    "required": "need",
    "necessary": "need",
    "permitted": "allow",
    "allowed": "allow",
    "decrease": "reduce",
    "lessen": "reduce",
    "enhance": "improve",
    "significant": "important",
    "difficult": "hard",
    "simple": "easy",
    "inexpensive": "cheap",
    "costly": "expensive",
    "novice": "beginner",
    "advice": "tip",
    "suggestion": "tip",
    "advantage": "benefit",
    "pro": "benefit",
    "disadvantage": "drawback",
    "downside": "drawback",
    "con": "drawback",
    "risky": "dangerous",
    "avoid": "prevent",
    "resolve": "fix",
    "solve": "fix",
    "delete": "remove",
    "erase": "remove",
    "compute": "calculate",
    "definition": "mean",
    "define": "mean",
    "meaning": "mean",
    "approximately": "about",
    "roughly": "about",
    "around": "about",
    "create": "make",
    "construct": "build",
    "receive": "get",
    "obtain": "get",
    "acquire": "get",
    "nation": "country",
    "nations": "country",
    "earth": "earth",
    "planet": "planet",
    "globe": "world",
    "ok": "okay",
    "cellphone": "phone",
    "smartphone": "phone",
    "mobile": "phone",
    "laptop": "computer",
    "pc": "computer",
    "tv": "television",
    "fridge": "refrigerator",
    "bike": "bicycle",
    "rabbit": "bunny",
    "fall": "autumn",
    "couch": "sofa",
    "vacation": "holiday",
    "trip": "journey",
    "doc": "doctor",
    "auto": "automatic",
    "info": "information",
    "config": "configuration",
    "repo": "repository",
    "grant": "give",
}

_CANON.update(
    {
        "larger": "bigger",
        "huger": "bigger",
        "littler": "smaller",
        "tinier": "smaller",
        "quicker": "faster",
        "speedier": "faster",
        "costlier": "more expensive",
        "easier": "simpler",
    }
)
#: canonical units, currencies and symbols: never taken for typos
_UNITS = frozenset(
    (
        *("usd", "eur", "gbp", "percent", "degree", "celsius", "fahrenheit", "km", "mile", "kg", "lb", "m"),
        *("cm", "ft", "in_", "hour", "minute", "sec", "l", "gal", "ml"),
    )
)
#: real words one keyboard slip apart: never taken for a typo of each other
_CONFUSABLE = frozenset(
    frozenset(p)
    for p in (
        ("lose", "loose"),
        ("chose", "choose"),
        ("later", "latter"),
        ("diner", "dinner"),
        ("desert", "dessert"),
        ("form", "from"),
        ("quite", "quiet"),
        ("advice", "advise"),
        ("affect", "effect"),
        ("then", "than"),
    )
)
#: closed-class words whose typos are corrected before the analysis (a typo of "where" is still "where")
_CLOSED = frozenset(
    [
        "what",
        "which",
        "why",
        "when",
        "where",
        "who",
        "whom",
        "whose",
        "how",
        "many",
        "much",
        "does",
        "do",
        "did",
        "is",
        "are",
        "was",
        "were",
        "should",
        "would",
        "could",
        "can",
        "your",
        "you",
        "the",
        "this",
        "that",
        "there",
        "their",
        "they",
        "with",
        "from",
        "into",
        "about",
        "have",
        "has",
        "been",
        "being",
        "for",
        "and",
        # from five letters: a slip in these is not another word ("affter", "withuot")
        "after",
        "before",
        "without",
        "often",
        "through",
        "between",
        "against",
        "because",
    ]
)
