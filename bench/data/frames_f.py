"""Held-out set F (shopping, customer service, school, law and paperwork, pets, cars): frames for
make_frames.py. Written AFTER the verifier changes that sets D and E prompted, and run once before anything
else; never used to tune anything. Mixed styles: chat-like lower case, statements with a question, formal."""

SEED = 6303

FRAMES = [
    {
        "a": "Can I return {item} to {shop} without a receipt?",
        "same": [
            ("paraphrase", "Is it possible to return {item} to {shop} without a receipt?"),
            ("reorder", "Without a receipt, can I return {item} to {shop}?"),
            ("paraphrase", "Am I able to return {item} to {shop} without a receipt?"),
        ],
        "diff": [
            ("negation", "Can I return {item} to {shop} with a receipt?"),
            ("near-topic", "Can I exchange {item} at {shop} without a receipt?"),
            ("scope", "Can I return {item} to {shop} without a receipt after 90 days?"),
        ],
        "fills": [
            {
                "item": "opened headphones",
                "shop": "Best Buy",
                "~shop": ("entity", "Walmart"),
                "~item": ("near-topic", "opened software"),
            },
            {
                "item": "a worn jacket",
                "shop": "Zara",
                "~shop": ("entity", "H&M"),
                "~item": ("antonym", "an unworn jacket"),
            },
            {"item": "a broken lamp", "shop": "IKEA", "~shop": ("entity", "Target")},
        ],
    },
    {
        "a": "my {pet} keeps {beh} at night, how do I stop it",
        "same": [
            ("paraphrase", "how do I stop my {pet} from {beh} at night"),
            ("paraphrase", "how can I get my {pet} to stop {beh} at night"),
            ("reorder", "at night my {pet} keeps {beh}, how do I stop it"),
        ],
        "diff": [
            ("direction", "my {pet} keeps {beh} in the morning, how do I stop it"),
            ("near-topic", "my {pet} keeps {beh} at night, is it normal"),
            ("antonym", "my {pet} keeps {beh} at night, how do I encourage it"),
        ],
        "fills": [
            {"pet": "puppy", "beh": "barking", "~pet": ("entity", "neighbor's dog"), "~beh": ("near-topic", "whining")},
            {
                "pet": "cat",
                "beh": "scratching the door",
                "~pet": ("entity", "kitten"),
                "~beh": ("near-topic", "scratching the sofa"),
            },
            {"pet": "parrot", "beh": "screaming", "~pet": ("entity", "cockatiel"), "~beh": ("near-topic", "biting")},
        ],
    },
    {
        "a": "How much does it cost to replace the {part} on a {year} {car}?",
        "same": [
            ("paraphrase", "What does it cost to replace the {part} on a {year} {car}?"),
            ("reorder", "On a {year} {car}, how much does it cost to replace the {part}?"),
            ("paraphrase", "What's the price to replace the {part} on a {year} {car}?"),
        ],
        "diff": [
            ("antonym", "How much does it cost to repair the {part} on a {year} {car}?"),
            ("near-topic", "How long does it take to replace the {part} on a {year} {car}?"),
            ("scope", "How much does it cost to replace both {part}s on a {year} {car}?"),
        ],
        "fills": [
            {
                "part": "timing belt",
                "year": "2012",
                "car": "Honda Civic",
                "~year": ("number", "2021"),
                "~car": ("entity", "Honda Accord"),
                "~part": ("near-topic", "serpentine belt"),
            },
            {
                "part": "windshield",
                "year": "2018",
                "car": "Tesla Model 3",
                "~year": ("number", "2008"),
                "~car": ("entity", "Tesla Model Y"),
            },
            {
                "part": "catalytic converter",
                "year": "2009",
                "car": "Toyota Prius",
                "~year": ("number", "2019"),
                "~car": ("entity", "Ford Focus"),
            },
        ],
    },
    {
        "a": "What grade do I need on the final to pass the class if I have a {g} now?",
        "same": [
            ("paraphrase", "What grade do I need on the final exam to pass the class if I have a {g} now?"),
            ("reorder", "If I have a {g} now, what grade do I need on the final to pass the class?"),
        ],
        "diff": [
            ("antonym", "What grade do I need on the final to fail the class if I have a {g} now?"),
            ("near-topic", "What grade do I need on the midterm to pass the class if I have a {g} now?"),
            ("scope", "What grade do I need on the final to get an A in the class if I have a {g} now?"),
        ],
        "fills": [
            {"g": "65", "~g": ("number", "56")},
            {"g": "72 percent", "~g": [("number", "27 percent"), ("unit", "72 points")]},
            {"g": "C minus", "~g": ("antonym", "C plus")},
        ],
    },
    {
        "a": "Who pays the {fee} when selling a house in {place}, the buyer or the seller?",
        "same": [
            ("reorder", "When selling a house in {place}, who pays the {fee}, the buyer or the seller?"),
            ("paraphrase", "Who pays the {fee} when selling a home in {place}, the buyer or the seller?"),
            ("reorder", "Who pays the {fee} when selling a house in {place}, the seller or the buyer?"),
        ],
        "diff": [
            ("direction", "Who pays the {fee} when buying a house in {place}, the buyer or the seller?"),
            ("near-topic", "How much is the {fee} when selling a house in {place}?"),
            ("scope", "Who pays the {fee} when selling a commercial property in {place}, the buyer or the seller?"),
        ],
        "fills": [
            {
                "fee": "closing costs",
                "place": "Florida",
                "~place": ("entity", "Georgia"),
                "~fee": ("near-topic", "property taxes"),
            },
            {
                "fee": "stamp duty",
                "place": "England",
                "~place": ("entity", "Scotland"),
                "~fee": ("near-topic", "legal fees"),
            },
            {
                "fee": "realtor commission",
                "place": "California",
                "~place": ("entity", "Nevada"),
                "~fee": ("near-topic", "title insurance"),
            },
        ],
    },
    {
        "a": "anyone know if {brand} ships to {country}",
        "same": [
            ("paraphrase", "does {brand} ship to {country}"),
            ("paraphrase", "does {brand} deliver to {country}"),
            ("reorder", "to {country}, does {brand} ship"),
        ],
        "diff": [
            ("direction", "anyone know if {brand} ships from {country}"),
            ("negation", "anyone know why {brand} doesn't ship to {country}"),
            ("near-topic", "anyone know how long {brand} takes to ship to {country}"),
        ],
        "fills": [
            {"brand": "Amazon", "country": "Iceland", "~country": ("entity", "Ireland"), "~brand": ("entity", "eBay")},
            {"brand": "Etsy", "country": "Australia", "~country": ("entity", "Austria"), "~brand": ("entity", "Shein")},
            {"brand": "Uniqlo", "country": "Chile", "~country": ("entity", "Peru"), "~brand": ("entity", "Muji")},
        ],
    },
    {
        "a": "How long do I have to file an appeal after a {case} decision in {place}?",
        "same": [
            ("paraphrase", "What is the deadline to file an appeal after a {case} decision in {place}?"),
            ("reorder", "In {place}, how long do I have to file an appeal after a {case} decision?"),
            ("paraphrase", "How much time do I have to file an appeal after a {case} decision in {place}?"),
        ],
        "diff": [
            ("near-topic", "How much does it cost to file an appeal after a {case} decision in {place}?"),
            ("direction", "How long do I have to file an appeal before a {case} decision in {place}?"),
            ("negation", "What happens if I don't file an appeal after a {case} decision in {place}?"),
        ],
        "fills": [
            {
                "case": "small claims",
                "place": "Texas",
                "~place": ("entity", "Ohio"),
                "~case": ("near-topic", "traffic court"),
            },
            {"case": "benefits", "place": "the UK", "~place": ("entity", "Wales"), "~case": ("near-topic", "tax")},
            {"case": "divorce", "place": "Ontario", "~place": ("entity", "Quebec"), "~case": ("near-topic", "custody")},
        ],
    },
    {
        "a": "I ordered {n} {things} but received {m}, what should I do?",
        "same": [
            ("paraphrase", "I ordered {n} {things} but got {m}, what should I do?"),
            ("paraphrase", "What should I do if I ordered {n} {things} but received {m}?"),
            ("reorder", "What should I do, I ordered {n} {things} but received {m}?"),
        ],
        "diff": [
            ("near-topic", "I ordered {n} {things} but received {m}, can I keep them?"),
            ("scope", "I ordered {n} {things} but received {m} damaged ones, what should I do?"),
        ],
        "fills": [
            {"n": "two", "things": "chairs", "m": "one", "<>": ("n", "m"), "~things": ("entity", "tables")},
            {"n": "6", "things": "bottles", "m": "4", "<>": ("n", "m"), "~m": ("number", "3")},
            {"n": "ten", "things": "notebooks", "m": "twelve", "<>": ("n", "m"), "~things": ("entity", "pens")},
        ],
    },
    {
        "a": "Is it legal to {act} in {place}?",
        "same": [
            ("paraphrase", "Is it allowed to {act} in {place}?"),
            ("reorder", "In {place}, is it legal to {act}?"),
            ("paraphrase", "Am I allowed to {act} in {place}?"),
        ],
        "diff": [
            ("antonym", "Is it illegal to {act} in {place}?"),
            ("scope", "Is it legal to {act} in {place} at night?"),
            ("near-topic", "What is the fine to {act} in {place}?"),
        ],
        "fills": [
            {
                "act": "fly a drone",
                "place": "national parks",
                "~place": ("entity", "state parks"),
                "~act": ("near-topic", "fly a kite"),
            },
            {
                "act": "collect rainwater",
                "place": "Colorado",
                "~place": ("entity", "Utah"),
                "~act": ("near-topic", "sell rainwater"),
            },
            {
                "act": "drive barefoot",
                "place": "Germany",
                "~place": ("entity", "Spain"),
                "~act": ("near-topic", "drive shirtless"),
            },
        ],
    },
    {
        "a": "What is the difference between a {x} and a {y}?",
        "same": [
            ("reorder", "What is the difference between a {y} and a {x}?"),
            ("paraphrase", "How does a {x} differ from a {y}?"),
            ("paraphrase", "What's the difference between a {x} and a {y}?"),
        ],
        "diff": [
            ("near-topic", "Which is better, a {x} or a {y}?"),
            ("scope", "What is the difference in price between a {x} and a {y}?"),
        ],
        "fills": [
            {"x": "lease", "y": "rental agreement", "~y": ("entity", "mortgage")},
            {"x": "Roth IRA", "y": "traditional IRA", "~x": ("entity", "401k")},
            {"x": "crocodile", "y": "alligator", "~y": ("entity", "caiman")},
        ],
    },
    {
        "a": "how many {unit} of {food} should I feed a {w} {pet} per day",
        "same": [
            ("paraphrase", "how many {unit} of {food} does a {w} {pet} need daily"),
            ("paraphrase", "how many {unit} of {food} should I feed a {w} {pet} each day"),
            ("reorder", "per day, how many {unit} of {food} should I feed a {w} {pet}"),
        ],
        "diff": [
            ("scope", "how many {unit} of {food} should I feed a {w} {pet} per meal"),
            ("antonym", "how many {unit} of {food} is too little for a {w} {pet} per day"),
        ],
        "fills": [
            {
                "unit": "cups",
                "food": "dry food",
                "w": "50 pound",
                "pet": "dog",
                "~w": ("number", "15 pound"),
                "~food": ("near-topic", "wet food"),
                "~unit": ("unit", "ounces"),
            },
            {
                "unit": "grams",
                "food": "kibble",
                "w": "4 kg",
                "pet": "cat",
                "~w": ("unit", "4 lb"),
                "~pet": ("entity", "rabbit"),
            },
            {
                "unit": "pellets",
                "food": "fish food",
                "w": "small",
                "pet": "goldfish",
                "~w": ("antonym", "large"),
                "~pet": ("entity", "betta"),
            },
        ],
    },
    {
        "a": "Should I {act} my car {when} a long road trip?",
        "same": [
            ("reorder", "{When2} a long road trip, should I {act} my car?"),
            ("paraphrase", "Is it a good idea to {act} my car {when} a long road trip?"),
        ],
        "diff": [
            ("negation", "Should I not {act} my car {when} a long road trip?"),
            ("scope", "Should I {act} my car {when} every road trip?"),
            ("near-topic", "Should I {act} my car {when} a long flight?"),
        ],
        "fills": [
            {
                "act": "service",
                "when": "before",
                "When2": "Before",
                "~when": ("direction", "after"),
                "~act": ("near-topic", "wash"),
            },
            {
                "act": "rotate the tires on",
                "when": "before",
                "When2": "Before",
                "~when": ("direction", "after"),
                "~act": ("near-topic", "check the tires on"),
            },
            {
                "act": "change the oil in",
                "when": "after",
                "When2": "After",
                "~when": ("direction", "before"),
                "~act": ("near-topic", "top up the oil in"),
            },
        ],
    },
    {
        "a": "My landlord wants to raise the rent by {pct}, is that allowed in {place}?",
        "same": [
            ("paraphrase", "Is my landlord allowed to raise the rent by {pct} in {place}?"),
            ("paraphrase", "My landlord wants to increase the rent by {pct}, is that allowed in {place}?"),
            ("reorder", "In {place}, my landlord wants to raise the rent by {pct}, is that allowed?"),
        ],
        "diff": [
            ("antonym", "My landlord wants to lower the rent by {pct}, is that allowed in {place}?"),
            ("direction", "I want to raise the rent by {pct} for my tenant, is that allowed in {place}?"),
            ("scope", "My landlord wants to raise the rent by {pct} every month, is that allowed in {place}?"),
        ],
        "fills": [
            {
                "pct": "10 percent",
                "place": "New York",
                "~pct": ("number", "15 percent"),
                "~place": ("entity", "New Jersey"),
            },
            {
                "pct": "$200",
                "place": "Oregon",
                "~pct": [("number", "$20"), ("unit", "200 euros")],
                "~place": ("entity", "Washington"),
            },
            {"pct": "5%", "place": "Berlin", "~pct": ("number", "50%"), "~place": ("entity", "Munich")},
        ],
    },
    {
        "a": "How do I {act} my {acct} account on {app}?",
        "same": [
            ("reorder", "On {app}, how do I {act} my {acct} account?"),
            ("paraphrase", "How can I {act} my {acct} account on {app}?"),
            ("paraphrase", "What are the steps to {act} my {acct} account on {app}?"),
        ],
        "diff": [
            ("person", "How do I {act} my son's {acct} account on {app}?"),
            ("negation", "Why can't I {act} my {acct} account on {app}?"),
            ("near-topic", "How do I {act} my {acct} subscription on {app}?"),
        ],
        "fills": [
            {
                "act": "delete",
                "acct": "student",
                "app": "Duolingo",
                "~act": ("antonym", "restore"),
                "~app": ("entity", "Coursera"),
            },
            {
                "act": "verify",
                "acct": "seller",
                "app": "eBay",
                "~act": ("antonym", "unverify"),
                "~acct": ("entity", "buyer"),
            },
            {
                "act": "upgrade",
                "acct": "free",
                "app": "Canva",
                "~act": ("antonym", "downgrade"),
                "~app": ("entity", "Figma"),
            },
        ],
    },
    {
        "a": "What vaccines does a {age} old {pet} need?",
        "same": [
            ("paraphrase", "Which vaccines does a {age} old {pet} need?"),
            ("paraphrase", "What vaccinations does a {age} old {pet} need?"),
            ("paraphrase", "What shots does a {age} old {pet} need?"),
        ],
        "diff": [
            ("negation", "What vaccines does a {age} old {pet} not need?"),
            ("near-topic", "What vaccines does a {age} old {pet} need before boarding?"),
            ("scope", "What vaccines does a {age} old {pet} need every year?"),
        ],
        "fills": [
            {"age": "8 week", "pet": "puppy", "~age": ("number", "16 week"), "~pet": ("entity", "kitten")},
            {"age": "one year", "pet": "dog", "~age": ("number", "ten year"), "~pet": ("entity", "cat")},
            {"age": "6 month", "pet": "ferret", "~age": ("unit", "6 week"), "~pet": ("entity", "rabbit")},
        ],
    },
    {
        "a": "Can a {who} {act} without a {doc}?",
        "same": [
            ("paraphrase", "Is a {who} able to {act} without a {doc}?"),
            ("paraphrase", "Can a {who} {act} if they do not have a {doc}?"),
        ],
        "diff": [
            ("negation", "Can a {who} {act} with a {doc}?"),
            ("near-topic", "How does a {who} get a {doc} to {act}?"),
            ("scope", "Can a {who} {act} without a {doc} in an emergency?"),
        ],
        "fills": [
            {
                "who": "minor",
                "act": "open a bank account",
                "doc": "parent's signature",
                "~who": ("antonym", "adult"),
                "~act": ("near-topic", "get a debit card"),
            },
            {
                "who": "tourist",
                "act": "rent a car",
                "doc": "credit card",
                "~doc": ("near-topic", "debit card"),
                "~who": ("entity", "student"),
            },
            {
                "who": "pharmacist",
                "act": "refill a prescription",
                "doc": "doctor's note",
                "~who": ("entity", "nurse"),
                "~act": ("near-topic", "write a prescription"),
            },
        ],
    },
]
