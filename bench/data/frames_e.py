"""Held-out set E (cooking, travel, health, sport, home and garden): frames for make_frames.py. Written before
the verifier was run on it; never used to tune anything. More imperative and casual phrasings than set D."""

SEED = 5202

FRAMES = [
    {
        "a": "Give me a recipe for {dish} without {ing}",
        "same": [
            ("paraphrase", "I need a recipe for {dish} without {ing}"),
            ("paraphrase", "Give me a {dish} recipe without {ing}"),
            ("reorder", "Without {ing}, give me a recipe for {dish}"),
        ],
        "diff": [
            ("negation", "Give me a recipe for {dish} with {ing}"),
            ("near-topic", "Give me the history of {dish} without {ing}"),
            ("scope", "Give me a quick recipe for {dish} without {ing} for a party of twenty"),
        ],
        "fills": [
            {"dish": "pancakes", "ing": "eggs", "~dish": ("entity", "waffles"), "~ing": ("near-topic", "milk")},
            {
                "dish": "banana bread",
                "ing": "butter",
                "~dish": ("entity", "zucchini bread"),
                "~ing": ("near-topic", "sugar"),
            },
            {"dish": "lasagna", "ing": "ricotta", "~dish": ("entity", "moussaka"), "~ing": ("near-topic", "meat")},
        ],
    },
    {
        "a": "how long do I roast a {w} {meat} at {t} degrees",
        "same": [
            ("paraphrase", "how long should a {w} {meat} roast at {t} degrees"),
            ("reorder", "at {t} degrees, how long do I roast a {w} {meat}"),
            ("paraphrase", "what is the roasting time for a {w} {meat} at {t} degrees"),
        ],
        "diff": [
            ("near-topic", "how long do I rest a {w} {meat} after roasting at {t} degrees"),
            ("scope", "how long do I roast a frozen {w} {meat} at {t} degrees"),
        ],
        "fills": [
            {
                "w": "4 pound",
                "meat": "chicken",
                "t": "400",
                "~w": ("number", "6 pound"),
                "~meat": ("entity", "duck"),
                "~t": ("number", "350"),
            },
            {"w": "2 kg", "meat": "leg of lamb", "t": "180", "~w": ("unit", "2 lb"), "~t": ("number", "220")},
            {"w": "12 pound", "meat": "turkey", "t": "325", "~w": ("number", "20 pound"), "~meat": ("entity", "ham")},
        ],
    },
    {
        "a": "What's the cheapest way to get from {src} to {dst}?",
        "same": [
            ("paraphrase", "What is the least expensive way to get from {src} to {dst}?"),
            ("reorder", "From {src} to {dst}, what's the cheapest way to get there?"),
            ("paraphrase", "What's the cheapest way to travel from {src} to {dst}?"),
        ],
        "diff": [
            ("antonym", "What's the most expensive way to get from {src} to {dst}?"),
            ("near-topic", "What's the fastest way to get from {src} to {dst}?"),
            ("scope", "What's the cheapest way to get from {src} to {dst} with a bike?"),
        ],
        "fills": [
            {"src": "Boston", "dst": "New York", "<>": ("src", "dst"), "~dst": ("entity", "Philadelphia")},
            {
                "src": "Paris airport",
                "dst": "the city centre",
                "<>": ("src", "dst"),
                "~src": ("entity", "Orly airport"),
            },
            {"src": "Milan", "dst": "Venice", "<>": ("src", "dst"), "~dst": ("entity", "Verona")},
        ],
    },
    {
        "a": "Do I need a visa to visit {country} with a {pp} passport?",
        "same": [
            ("paraphrase", "Is a visa required to visit {country} with a {pp} passport?"),
            ("reorder", "With a {pp} passport, do I need a visa to visit {country}?"),
            ("paraphrase", "Do I need a visa for {country} with a {pp} passport?"),
        ],
        "diff": [
            ("scope", "Do I need a visa to work in {country} with a {pp} passport?"),
            ("near-topic", "Do I need vaccinations to visit {country} with a {pp} passport?"),
            ("scope", "Do I need a visa to visit {country} for six months with a {pp} passport?"),
        ],
        "fills": [
            {"country": "Japan", "pp": "Canadian", "~country": ("entity", "China"), "~pp": ("entity", "Indian")},
            {"country": "Brazil", "pp": "US", "~country": ("entity", "Argentina"), "~pp": ("entity", "UK")},
            {"country": "Turkey", "pp": "German", "~country": ("entity", "Egypt"), "~pp": ("entity", "Nigerian")},
        ],
    },
    {
        "a": "How many {unit} of water should a {who} drink per day?",
        "same": [
            ("paraphrase", "How many {unit} of water does a {who} need to drink each day?"),
            ("reorder", "Per day, how many {unit} of water should a {who} drink?"),
            ("paraphrase", "How many {unit} of water should a {who} drink daily?"),
        ],
        "diff": [
            ("near-topic", "How many {unit} of coffee should a {who} drink per day?"),
            ("scope", "How many {unit} of water should a {who} drink per day in hot weather?"),
            ("antonym", "How many {unit} of water is too much for a {who} to drink per day?"),
        ],
        "fills": [
            {"unit": "liters", "who": "adult", "~unit": ("unit", "glasses"), "~who": ("entity", "toddler")},
            {"unit": "ounces", "who": "runner", "~unit": ("unit", "cups"), "~who": ("entity", "pregnant woman")},
            {"unit": "cups", "who": "teenager", "~unit": ("unit", "gallons"), "~who": ("entity", "senior")},
        ],
    },
    {
        "a": "tell me how to {act} my {item} by hand",
        "same": [
            ("paraphrase", "tell me how I can {act} my {item} by hand"),
            ("reorder", "by hand, tell me how to {act} my {item}"),
            ("paraphrase", "explain how to {act} my {item} by hand"),
        ],
        "diff": [
            ("near-topic", "tell me how to {act} my {item} in the machine"),
            ("negation", "tell me why not to {act} my {item} by hand"),
        ],
        "fills": [
            {"act": "wash", "item": "wool sweater", "~act": ("near-topic", "dry"), "~item": ("entity", "silk shirt")},
            {
                "act": "sharpen",
                "item": "kitchen knife",
                "~act": ("near-topic", "polish"),
                "~item": ("entity", "lawn mower blade"),
            },
            {
                "act": "clean",
                "item": "cast iron pan",
                "~act": ("near-topic", "season"),
                "~item": ("entity", "stainless steel pan"),
            },
        ],
    },
    {
        "a": "Who won the {event} in {year}?",
        "same": [
            ("paraphrase", "Who was the winner of the {event} in {year}?"),
            ("reorder", "In {year}, who won the {event}?"),
            ("paraphrase", "Which team won the {event} in {year}?"),
        ],
        "diff": [
            ("antonym", "Who lost the {event} in {year}?"),
            ("near-topic", "Who hosted the {event} in {year}?"),
            ("scope", "Who won the {event} in {year} and who scored?"),
        ],
        "fills": [
            {
                "event": "World Cup final",
                "year": "2014",
                "~year": ("number", "2018"),
                "~event": ("entity", "Euro final"),
            },
            {"event": "Super Bowl", "year": "2020", "~year": ("number", "2002"), "~event": ("entity", "Stanley Cup")},
            {"event": "NBA Finals", "year": "1998", "~year": ("number", "1999"), "~event": ("entity", "WNBA Finals")},
        ],
    },
    {
        "a": "When should I plant {plant} in {region}?",
        "same": [
            ("paraphrase", "What is the best time to plant {plant} in {region}?"),
            ("reorder", "In {region}, when should I plant {plant}?"),
            ("paraphrase", "When is the right time to plant {plant} in {region}?"),
        ],
        "diff": [
            ("antonym", "When should I harvest {plant} in {region}?"),
            ("near-topic", "How deep should I plant {plant} in {region}?"),
            ("scope", "When should I plant {plant} indoors in {region}?"),
        ],
        "fills": [
            {
                "plant": "tulip bulbs",
                "region": "Ohio",
                "~plant": ("entity", "daffodil bulbs"),
                "~region": ("entity", "Texas"),
            },
            {"plant": "garlic", "region": "Scotland", "~plant": ("entity", "onions"), "~region": ("entity", "Spain")},
            {"plant": "tomatoes", "region": "zone 6", "~region": ("number", "zone 9"), "~plant": ("entity", "peppers")},
        ],
    },
    {
        "a": "Is it safe to take {d1} and {d2} together?",
        "same": [
            ("paraphrase", "Can I safely take {d1} and {d2} together?"),
            ("paraphrase", "Is it safe to take {d1} together with {d2}?"),
            ("reorder", "Is it safe to take {d2} and {d1} together?"),
        ],
        "diff": [
            ("negation", "Why is it not safe to take {d1} and {d2} together?"),
            ("scope", "Is it safe to take {d1} and {d2} together while pregnant?"),
            ("near-topic", "Is it safe to take {d1} and {d2} on an empty stomach?"),
        ],
        "fills": [
            {"d1": "ibuprofen", "d2": "paracetamol", "~d2": ("entity", "aspirin")},
            {"d1": "melatonin", "d2": "antihistamines", "~d1": ("entity", "caffeine")},
            {"d1": "vitamin D", "d2": "calcium", "~d2": ("entity", "iron")},
        ],
    },
    {
        "a": "How many calories do I burn {act} for {dur}?",
        "same": [
            ("paraphrase", "How many calories does {act} for {dur} burn?"),
            ("reorder", "For {dur}, how many calories do I burn {act}?"),
            ("paraphrase", "How many calories are burned {act} for {dur}?"),
        ],
        "diff": [
            ("near-topic", "How much fat do I burn {act} for {dur}?"),
            ("scope", "How many calories do I burn {act} for {dur} every day for a month?"),
        ],
        "fills": [
            {"act": "swimming", "dur": "an hour", "~act": ("entity", "cycling"), "~dur": ("number", "two hours")},
            {"act": "walking", "dur": "30 minutes", "~act": ("entity", "jogging"), "~dur": ("number", "45 minutes")},
            {"act": "rowing", "dur": "20 minutes", "~dur": ("unit", "20 seconds"), "~act": ("entity", "skiing")},
        ],
    },
    {
        "a": "What should I pack for a {n} day trip to {place} in {month}?",
        "same": [
            ("paraphrase", "What do I need to pack for a {n} day trip to {place} in {month}?"),
            ("reorder", "In {month}, what should I pack for a {n} day trip to {place}?"),
            ("paraphrase", "What to pack for a {n} day trip to {place} in {month}?"),
        ],
        "diff": [
            ("near-topic", "What should I see on a {n} day trip to {place} in {month}?"),
            ("negation", "What should I not pack for a {n} day trip to {place} in {month}?"),
        ],
        "fills": [
            {
                "n": "5",
                "place": "Iceland",
                "month": "March",
                "~n": ("number", "15"),
                "~month": ("entity", "August"),
                "~place": ("entity", "Norway"),
            },
            {
                "n": "three",
                "place": "Morocco",
                "month": "July",
                "~n": ("number", "ten"),
                "~month": ("entity", "December"),
            },
            {
                "n": "7",
                "place": "Vietnam",
                "month": "October",
                "~place": ("entity", "Thailand"),
                "~month": ("entity", "April"),
            },
        ],
    },
    {
        "a": "Can I substitute {x} for {y} in {dish}?",
        "same": [
            ("paraphrase", "Can I use {x} instead of {y} in {dish}?"),
            ("reorder", "In {dish}, can I substitute {x} for {y}?"),
            ("paraphrase", "Is it okay to substitute {x} for {y} in {dish}?"),
        ],
        "diff": [
            ("negation", "Why can't I substitute {x} for {y} in {dish}?"),
            ("near-topic", "How much {x} should I use in {dish}?"),
        ],
        "fills": [
            {"x": "honey", "y": "sugar", "dish": "cookies", "<>": ("x", "y"), "~dish": ("entity", "bread")},
            {
                "x": "baking soda",
                "y": "baking powder",
                "dish": "muffins",
                "<>": ("x", "y"),
                "~dish": ("entity", "pancakes"),
            },
            {
                "x": "Greek yogurt",
                "y": "sour cream",
                "dish": "a dip",
                "<>": ("x", "y"),
                "~dish": ("entity", "a cheesecake"),
            },
        ],
    },
    {
        "a": "What is a good {dist} finishing time for a {age} year old {who}?",
        "same": [
            ("paraphrase", "What's a good {dist} finishing time for a {who} aged {age}?"),
            ("reorder", "For a {age} year old {who}, what is a good {dist} finishing time?"),
        ],
        "diff": [
            ("antonym", "What is a bad {dist} finishing time for a {age} year old {who}?"),
            ("near-topic", "What is a good {dist} pace plan for a {age} year old {who}?"),
        ],
        "fills": [
            {
                "dist": "marathon",
                "age": "40",
                "who": "woman",
                "~age": ("number", "60"),
                "~who": ("entity", "man"),
                "~dist": ("near-topic", "half marathon"),
            },
            {"dist": "5k", "age": "25", "who": "man", "~age": ("number", "52"), "~dist": ("unit", "5 mile")},
            {"dist": "mile", "age": "16", "who": "girl", "~age": ("number", "61"), "~who": ("entity", "boy")},
        ],
    },
    {
        "a": "My {room} smells like {smell}, what could cause it?",
        "same": [
            ("paraphrase", "What could cause my {room} to smell like {smell}?"),
            ("paraphrase", "Why does my {room} smell like {smell}?"),
            ("reorder", "What could cause it, my {room} smells like {smell}?"),
        ],
        "diff": [
            ("near-topic", "My {room} smells like {smell}, how do I get rid of it?"),
            ("scope", "My whole house smells like {smell}, what could cause it?"),
        ],
        "fills": [
            {"room": "basement", "smell": "rotten eggs", "~room": ("entity", "car"), "~smell": ("near-topic", "mold")},
            {"room": "bathroom", "smell": "sewage", "~room": ("entity", "kitchen"), "~smell": ("near-topic", "bleach")},
            {
                "room": "fridge",
                "smell": "fish",
                "~room": ("entity", "dishwasher"),
                "~smell": ("near-topic", "burnt plastic"),
            },
        ],
    },
    {
        "a": "How far is it from {src} to {dst} by {mode}?",
        "same": [
            ("paraphrase", "What is the distance from {src} to {dst} by {mode}?"),
            ("reorder", "By {mode}, how far is it from {src} to {dst}?"),
        ],
        "diff": [
            ("near-topic", "How long does it take from {src} to {dst} by {mode}?"),
            ("scope", "How far is it from {src} to {dst} and back by {mode}?"),
        ],
        "fills": [
            {"src": "Lisbon", "dst": "Porto", "mode": "car", "~mode": ("entity", "train"), "~dst": ("entity", "Faro")},
            {
                "src": "Sydney",
                "dst": "Melbourne",
                "mode": "road",
                "~mode": ("entity", "air"),
                "~src": ("entity", "Brisbane"),
            },
            {"src": "Denver", "dst": "Aspen", "mode": "car", "~mode": ("entity", "bus"), "~dst": ("entity", "Vail")},
        ],
    },
    {
        "a": "How often should I {act} my {thing}?",
        "same": [
            ("paraphrase", "How frequently should I {act} my {thing}?"),
            ("paraphrase", "How often do I need to {act} my {thing}?"),
        ],
        "diff": [
            ("negation", "Why should I never {act} my {thing}?"),
            ("near-topic", "How should I {act} my {thing}?"),
            ("scope", "How often should I {act} my {thing} in winter?"),
        ],
        "fills": [
            {"act": "water", "thing": "succulents", "~thing": ("entity", "ferns"), "~act": ("near-topic", "repot")},
            {
                "act": "replace",
                "thing": "toothbrush",
                "~thing": ("entity", "mattress"),
                "~act": ("near-topic", "disinfect"),
            },
            {
                "act": "change",
                "thing": "furnace filter",
                "~thing": ("entity", "car oil"),
                "~act": ("near-topic", "inspect"),
            },
        ],
    },
    {
        "a": "Is {food} good for people with {cond}?",
        "same": [
            ("paraphrase", "Is {food} healthy for people with {cond}?"),
            ("reorder", "For people with {cond}, is {food} good?"),
            ("paraphrase", "Is eating {food} good for people with {cond}?"),
        ],
        "diff": [
            ("antonym", "Is {food} bad for people with {cond}?"),
            ("negation", "Is {food} not good for people without {cond}?"),
        ],
        "fills": [
            {
                "food": "oatmeal",
                "cond": "diabetes",
                "~food": ("entity", "white rice"),
                "~cond": ("entity", "celiac disease"),
            },
            {
                "food": "dark chocolate",
                "cond": "high blood pressure",
                "~food": ("entity", "milk chocolate"),
                "~cond": ("antonym", "low blood pressure"),
            },
            {"food": "spinach", "cond": "kidney stones", "~food": ("entity", "kale"), "~cond": ("entity", "gout")},
        ],
    },
]
