"""Held-out set D (software, devops, money, office tools): frames for make_frames.py. Written before the
verifier was run on it; never used to tune anything."""

SEED = 4101

FRAMES = [
    {
        "a": "How do I {act} automatic updates on {os}?",
        "same": [
            ("paraphrase", "What's the way to {act} automatic updates on {os}?"),
            ("reorder", "On {os}, how do I {act} automatic updates?"),
            ("paraphrase", "How can I {act} auto updates on {os}?"),
        ],
        "diff": [
            ("negation", "Why can't I {act} automatic updates on {os}?"),
            ("scope", "How do I {act} automatic updates on {os} for all users?"),
            ("near-topic", "How do I {act} automatic backups on {os}?"),
        ],
        "fills": [
            {"act": "turn off", "os": "Windows 11", "~act": ("antonym", "turn on"), "~os": ("entity", "Ubuntu")},
            {"act": "enable", "os": "macOS", "~act": ("antonym", "disable"), "~os": ("entity", "iOS")},
            {"act": "pause", "os": "Android", "~act": ("antonym", "resume"), "~os": ("entity", "ChromeOS")},
        ],
    },
    {
        "a": "How much does it cost to send {amount} from {src} to {dst}?",
        "same": [
            ("paraphrase", "What does it cost to send {amount} from {src} to {dst}?"),
            ("reorder", "From {src} to {dst}, how much does it cost to send {amount}?"),
            ("paraphrase", "What is the fee for sending {amount} from {src} to {dst}?"),
        ],
        "diff": [
            ("near-topic", "How long does it take to send {amount} from {src} to {dst}?"),
            ("scope", "How much does it cost to send {amount} from {src} to {dst} every month?"),
        ],
        "fills": [
            {
                "amount": "$500",
                "src": "the US",
                "dst": "Mexico",
                "<>": ("src", "dst"),
                "~amount": [("number", "$5,000"), ("unit", "500 euros")],
            },
            {
                "amount": "1000 pounds",
                "src": "the UK",
                "dst": "India",
                "<>": ("src", "dst"),
                "~amount": [("number", "100 pounds"), ("unit", "1000 dollars")],
            },
            {
                "amount": "200 euros",
                "src": "Germany",
                "dst": "Poland",
                "<>": ("src", "dst"),
                "~dst": ("entity", "Portugal"),
            },
        ],
    },
    {
        "a": "How do I merge {x} into {y} in git?",
        "same": [
            ("reorder", "In git, how do I merge {x} into {y}?"),
            ("paraphrase", "What's the git command to merge {x} into {y}?"),
            ("paraphrase", "How can I merge {x} into {y} using git?"),
        ],
        "diff": [
            ("near-topic", "How do I rebase {x} onto {y} in git?"),
            ("negation", "Why does git not merge {x} into {y}?"),
            ("antonym", "How do I undo a merge of {x} into {y} in git?"),
        ],
        "fills": [
            {"x": "main", "y": "my feature branch", "<>": ("x", "y")},
            {"x": "the develop branch", "y": "the release branch", "<>": ("x", "y")},
            {"x": "a hotfix branch", "y": "master", "<>": ("x", "y")},
        ],
    },
    {
        "a": "What is the maximum file size I can upload to {svc}?",
        "same": [
            ("paraphrase", "What's the largest file I can upload to {svc}?"),
            ("paraphrase", "How big can a file be when I upload it to {svc}?"),
            ("reorder", "For {svc}, what is the maximum file size I can upload?"),
        ],
        "diff": [
            ("antonym", "What is the minimum file size I can upload to {svc}?"),
            ("direction", "What is the maximum file size I can download from {svc}?"),
            ("near-topic", "What is the maximum number of files I can upload to {svc}?"),
            ("scope", "What is the maximum file size I can upload to {svc} on the free plan?"),
        ],
        "fills": [
            {"svc": "Google Drive", "~svc": ("entity", "Dropbox")},
            {"svc": "Slack", "~svc": ("entity", "Discord")},
            {"svc": "GitHub", "~svc": ("entity", "GitLab")},
        ],
    },
    {
        "a": "How many vacation days do employees get after {n} years in {country}?",
        "same": [
            ("paraphrase", "After {n} years, how many vacation days do employees get in {country}?"),
            ("paraphrase", "How many days of vacation do employees in {country} get after {n} years?"),
            ("paraphrase", "How many holiday days do employees get after {n} years in {country}?"),
        ],
        "diff": [
            ("near-topic", "How many sick days do employees get after {n} years in {country}?"),
            ("scope", "How many vacation days do part-time employees get after {n} years in {country}?"),
        ],
        "fills": [
            {"n": "5", "country": "France", "~n": ("number", "10"), "~country": ("entity", "Spain")},
            {"n": "two", "country": "Japan", "~n": ("number", "three"), "~country": ("entity", "Korea")},
            {"n": "20", "country": "Germany", "~n": ("number", "2"), "~country": ("entity", "Austria")},
        ],
    },
    {
        "a": "Convert {v} {u1} to {u2}",
        "same": [
            ("paraphrase", "How many {u2} is {v} {u1}?"),
            ("paraphrase", "What is {v} {u1} in {u2}?"),
            ("paraphrase", "Please convert {v} {u1} to {u2}"),
        ],
        "diff": [
            ("near-topic", "Compress {v} {u1} to {u2}"),
        ],
        "fills": [
            {
                "v": "512",
                "u1": "megabytes",
                "u2": "gigabytes",
                "<>": ("u1", "u2"),
                "~v": ("number", "256"),
                "~u2": ("unit", "kilobytes"),
            },
            {
                "v": "3",
                "u1": "terabytes",
                "u2": "gigabytes",
                "<>": ("u1", "u2"),
                "~v": ("number", "30"),
                "~u1": ("unit", "gigabits"),
            },
            {"v": "100", "u1": "Mbps", "u2": "MB/s", "<>": ("u1", "u2"), "~v": ("number", "1000")},
        ],
    },
    {
        "a": "Is it possible to {act} a {pay} payment after it has been sent?",
        "same": [
            ("paraphrase", "Can I {act} a {pay} payment after it has been sent?"),
            ("paraphrase", "Is there a way to {act} a {pay} payment once it has been sent?"),
            ("reorder", "After it has been sent, is it possible to {act} a {pay} payment?"),
        ],
        "diff": [
            ("direction", "Is it possible to {act} a {pay} payment after it has been received?"),
            ("antonym", "Is it possible to {act} a {pay} payment before it has been sent?"),
            ("negation", "Why is it not possible to {act} a {pay} payment after it has been sent?"),
        ],
        "fills": [
            {"act": "cancel", "pay": "PayPal", "~pay": ("entity", "Venmo"), "~act": ("near-topic", "track")},
            {"act": "reverse", "pay": "Zelle", "~pay": ("entity", "Wise"), "~act": ("near-topic", "split")},
            {"act": "refund", "pay": "Stripe", "~pay": ("entity", "Square"), "~act": ("near-topic", "schedule")},
        ],
    },
    {
        "a": "Which is faster for {task}, {x} or {y}?",
        "same": [
            ("reorder", "For {task}, which is faster, {x} or {y}?"),
            ("paraphrase", "Which one is quicker for {task}, {x} or {y}?"),
            ("paraphrase", "Is {x} or {y} faster for {task}?"),
        ],
        "diff": [
            ("antonym", "Which is slower for {task}, {x} or {y}?"),
            ("near-topic", "Which is cheaper for {task}, {x} or {y}?"),
            ("scope", "Which is faster for {task} on a laptop, {x} or {y}?"),
        ],
        "fills": [
            {"task": "web servers", "x": "Go", "y": "Node.js", "~y": ("entity", "Rust")},
            {"task": "data analysis", "x": "pandas", "y": "Polars", "~x": ("entity", "NumPy")},
            {"task": "key-value caching", "x": "Redis", "y": "Memcached", "~y": ("entity", "Postgres")},
        ],
    },
    {
        "a": "How do I {act} a column in {tool}?",
        "same": [
            ("reorder", "In {tool}, how do I {act} a column?"),
            ("paraphrase", "What's the way to {act} a column in {tool}?"),
            ("paraphrase", "How can I {act} a column in {tool}?"),
        ],
        "diff": [
            ("near-topic", "How do I {act} a row in {tool}?"),
            ("scope", "How do I {act} every column in {tool}?"),
            ("negation", "How do I not {act} a column in {tool}?"),
        ],
        "fills": [
            {"act": "hide", "tool": "Excel", "~act": ("antonym", "unhide"), "~tool": ("entity", "Google Sheets")},
            {"act": "freeze", "tool": "Google Sheets", "~act": ("antonym", "unfreeze"), "~tool": ("entity", "Numbers")},
            {
                "act": "add",
                "tool": "a Postgres table",
                "~act": ("antonym", "drop"),
                "~tool": ("entity", "a MySQL table"),
            },
        ],
    },
    {
        "a": "What is the interest on a {amt} loan at {rate} percent for {n} years?",
        "same": [
            ("paraphrase", "How much interest do I pay on a {amt} loan at {rate} percent for {n} years?"),
            ("reorder", "At {rate} percent for {n} years, what is the interest on a {amt} loan?"),
            ("paraphrase", "What's the interest on a {amt} loan at {rate}% over {n} years?"),
        ],
        "diff": [
            ("near-topic", "What is the monthly payment on a {amt} loan at {rate} percent for {n} years?"),
            ("antonym", "What is the interest on a {amt} deposit at {rate} percent for {n} years?"),
        ],
        "fills": [
            {
                "amt": "$10,000",
                "rate": "5",
                "n": "3",
                "~amt": ("number", "$100,000"),
                "~n": ("number", "30"),
                "<>": ("rate", "n"),
            },
            {"amt": "$250,000", "rate": "6.5", "n": "30", "~rate": ("number", "5.6"), "~n": ("number", "15")},
            {"amt": "20,000 euros", "rate": "4", "n": "5", "~amt": ("unit", "20,000 dollars"), "<>": ("rate", "n")},
        ],
    },
    {
        "a": "Why is my {dev} {symptom} after the latest update?",
        "same": [
            ("paraphrase", "Why has my {dev} been {symptom2} since the latest update?"),
            ("reorder", "After the latest update, why is my {dev} {symptom}?"),
            ("paraphrase", "What makes my {dev} {symptom3} after the latest update?"),
        ],
        "diff": [
            ("direction", "Why is my {dev} {symptom} before the latest update?"),
            ("scope", "Why is my {dev} {symptom} after every update?"),
            ("negation", "Why is my {dev} not {symptom} after the latest update?"),
        ],
        "fills": [
            {
                "dev": "iPhone",
                "symptom": "overheating",
                "symptom2": "overheating",
                "symptom3": "overheat",
                "~dev": ("entity", "iPad"),
                "~symptom": ("near-topic", "freezing"),
            },
            {
                "dev": "laptop",
                "symptom": "running slow",
                "symptom2": "running slow",
                "symptom3": "run slow",
                "~dev": ("entity", "printer"),
                "~symptom": ("antonym", "running fast"),
            },
            {
                "dev": "router",
                "symptom": "dropping connections",
                "symptom2": "dropping connections",
                "symptom3": "drop connections",
                "~dev": ("entity", "smart TV"),
            },
        ],
    },
    {
        "a": "How do I give {who} {perm} access to a {obj} in {svc}?",
        "same": [
            ("reorder", "In {svc}, how do I give {who} {perm} access to a {obj}?"),
            ("paraphrase", "How can I grant {who} {perm} access to a {obj} in {svc}?"),
        ],
        "diff": [
            ("antonym", "How do I remove {perm} access to a {obj} from {who} in {svc}?"),
            ("scope", "How do I give {who} {perm} access to every {obj} in {svc}?"),
            ("negation", "Why can't I give {who} {perm} access to a {obj} in {svc}?"),
        ],
        "fills": [
            {
                "who": "a contractor",
                "perm": "read-only",
                "obj": "bucket",
                "svc": "AWS",
                "~perm": ("antonym", "write"),
                "~svc": ("entity", "Azure"),
            },
            {
                "who": "my team",
                "perm": "edit",
                "obj": "folder",
                "svc": "SharePoint",
                "~perm": ("antonym", "view"),
                "~who": ("entity", "my manager"),
            },
            {
                "who": "a new hire",
                "perm": "admin",
                "obj": "repository",
                "svc": "GitHub",
                "~obj": ("near-topic", "project"),
                "~svc": ("entity", "Bitbucket"),
            },
        ],
    },
    {
        "a": "Can I deduct {item} from my taxes in {country}?",
        "same": [
            ("paraphrase", "Is {item} tax deductible in {country}?"),
            ("reorder", "In {country}, can I deduct {item} from my taxes?"),
            ("paraphrase", "Am I able to deduct {item} from my taxes in {country}?"),
        ],
        "diff": [
            ("negation", "Why can I not deduct {item} from my taxes in {country}?"),
            ("scope", "Can I deduct {item} from my taxes in {country} if I am self-employed?"),
            ("near-topic", "Can I deduct {item} from my business taxes in {country}?"),
        ],
        "fills": [
            {
                "item": "home office costs",
                "country": "Canada",
                "~country": ("entity", "Australia"),
                "~item": ("near-topic", "commuting costs"),
            },
            {
                "item": "student loan interest",
                "country": "the US",
                "~country": ("entity", "the UK"),
                "~item": ("near-topic", "student loan payments"),
            },
            {
                "item": "charitable donations",
                "country": "Ireland",
                "~country": ("entity", "Iceland"),
                "~item": ("near-topic", "political donations"),
            },
        ],
    },
    {
        "a": "What port does {svc} use by default?",
        "same": [
            ("paraphrase", "Which port does {svc} use by default?"),
            ("paraphrase", "What is the default port for {svc}?"),
            ("reorder", "By default, what port does {svc} use?"),
        ],
        "diff": [
            ("near-topic", "What user does {svc} run as by default?"),
            ("scope", "What port does {svc} use by default on Windows?"),
            ("negation", "What port does {svc} not use by default?"),
        ],
        "fills": [
            {"svc": "PostgreSQL", "~svc": ("entity", "MySQL")},
            {"svc": "SSH", "~svc": ("entity", "FTP")},
            {"svc": "Redis", "~svc": ("entity", "MongoDB")},
        ],
    },
    {
        "a": "How long does it take for a {kind} to clear in {country}?",
        "same": [
            ("paraphrase", "How long until a {kind} clears in {country}?"),
            ("reorder", "In {country}, how long does it take for a {kind} to clear?"),
            ("paraphrase", "How many days does it take for a {kind} to clear in {country}?"),
        ],
        "diff": [
            ("near-topic", "How much does it cost for a {kind} to clear in {country}?"),
            ("scope", "How long does it take for an international {kind} to clear in {country}?"),
            ("negation", "Why does a {kind} not clear in {country}?"),
        ],
        "fills": [
            {
                "kind": "check",
                "country": "the US",
                "~kind": ("near-topic", "wire transfer"),
                "~country": ("entity", "Canada"),
            },
            {
                "kind": "bank transfer",
                "country": "the UK",
                "~kind": ("near-topic", "card payment"),
                "~country": ("entity", "Italy"),
            },
        ],
    },
    {
        "a": "Show me how to sort a list of {what} in {lang} by {key}",
        "same": [
            ("paraphrase", "How do I sort a list of {what} by {key} in {lang}?"),
            ("reorder", "In {lang}, show me how to sort a list of {what} by {key}"),
            ("paraphrase", "Show me how to order a list of {what} by {key} in {lang}"),
        ],
        "diff": [
            ("scope", "Show me how to sort a list of {what} in {lang} by {key} in descending order"),
            ("near-topic", "Show me how to filter a list of {what} in {lang} by {key}"),
        ],
        "fills": [
            {
                "what": "dictionaries",
                "lang": "Python",
                "key": "date",
                "~lang": ("entity", "JavaScript"),
                "~key": ("near-topic", "name"),
            },
            {
                "what": "objects",
                "lang": "Java",
                "key": "price",
                "~lang": ("entity", "Kotlin"),
                "~what": ("near-topic", "strings"),
            },
            {
                "what": "tuples",
                "lang": "Rust",
                "key": "the second element",
                "~key": ("number", "the first element"),
                "~lang": ("entity", "Haskell"),
            },
        ],
    },
    {
        "a": "How many {res} should I give a {wl} with {n} users?",
        "same": [
            ("paraphrase", "How many {res} does a {wl} with {n} users need?"),
            ("reorder", "For a {wl} with {n} users, how many {res} should I give it?"),
        ],
        "diff": [
            ("near-topic", "How many replicas should I give a {wl} with {n} users?"),
            ("scope", "How many {res} should I give a {wl} with {n} concurrent users at peak?"),
        ],
        "fills": [
            {
                "res": "CPU cores",
                "wl": "database server",
                "n": "10,000",
                "~n": ("number", "1,000"),
                "~res": ("unit", "GB of RAM"),
            },
            {
                "res": "worker processes",
                "wl": "web app",
                "n": "500",
                "~n": ("number", "50,000"),
                "~wl": ("entity", "chat server"),
            },
            {
                "res": "GB of memory",
                "wl": "Elasticsearch cluster",
                "n": "200",
                "~n": ("number", "2,000"),
                "~res": ("unit", "TB of disk"),
            },
        ],
    },
    {
        "a": "Does {plan} include {feature}?",
        "same": [
            ("paraphrase", "Is {feature} included in {plan}?"),
            ("paraphrase", "Does {plan} come with {feature}?"),
        ],
        "diff": [
            ("negation", "Why does {plan} not include {feature}?"),
            ("near-topic", "How much does {feature} cost on top of {plan}?"),
        ],
        "fills": [
            {
                "plan": "the Microsoft 365 Basic plan",
                "feature": "desktop Office apps",
                "~plan": ("entity", "the Microsoft 365 Family plan"),
                "~feature": ("near-topic", "web Office apps"),
            },
            {
                "plan": "Spotify Free",
                "feature": "offline listening",
                "~plan": ("entity", "Spotify Duo"),
                "~feature": ("near-topic", "ad-free listening"),
            },
            {
                "plan": "the Zoom free plan",
                "feature": "cloud recording",
                "~plan": ("entity", "the Zoom Pro plan"),
                "~feature": ("near-topic", "local recording"),
            },
        ],
    },
    {
        "a": "What happens if I pay my credit card bill {when}?",
        "same": [
            ("paraphrase", "What happens when I pay my credit card bill {when}?"),
            ("reorder", "If I pay my credit card bill {when}, what happens?"),
            ("paraphrase", "What are the consequences of paying my credit card bill {when}?"),
        ],
        "diff": [
            ("near-topic", "What happens if I pay my phone bill {when}?"),
            ("negation", "What happens if I don't pay my credit card bill {when}?"),
            ("scope", "What happens if I pay only half of my credit card bill {when}?"),
        ],
        "fills": [
            {"when": "two days late", "~when": [("antonym", "two days early"), ("number", "twenty days late")]},
            {"when": "a week early", "~when": [("antonym", "a week late"), ("number", "a month early")]},
        ],
    },
]
