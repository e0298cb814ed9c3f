"""What the demo corpus holds: its sentences, its speakers and its profiles.

The sentences said in each language, the eSpeak NG voice variants that play
the speakers, and the corpus profiles (``realistic``: the speakers and class
counts of the real corpora each language stands in for; ``balanced``: the
first release's corpus), turned into counts per speaker and emotion by
:func:`speaker_counts`.

Authors
 * zsser contributors 2026
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from zsser_modules.data_prep.meld import SPLITS
from zsser_modules.labels import EMOTIONS, LANGUAGES

#: Short neutral-content sentences, in each language's own script.
SENTENCES: dict[str, tuple[str, ...]] = {
    "en": (
        "The train leaves at seven in the morning.",
        "Please put the books on the table.",
        "The meeting is on the second floor.",
        "We need to buy bread and milk today.",
        "The window in the kitchen is open.",
        "My brother lives near the old bridge.",
        "The letter arrived on Tuesday afternoon.",
        "There are four chairs in the room.",
        "She walked to the station after lunch.",
        "The shop closes at six this evening.",
    ),
    "zh": (
        "火车早上七点出发。",
        "请把书放在桌子上。",
        "会议在二楼举行。",
        "我们今天需要买面包和牛奶。",
        "厨房的窗户开着。",
        "我哥哥住在老桥附近。",
        "信是星期二下午到的。",
        "房间里有四把椅子。",
        "她吃完午饭后走去车站。",
        "商店今天晚上六点关门。",
    ),
    "de": (
        "Der Zug fährt um sieben Uhr morgens ab.",
        "Bitte leg die Bücher auf den Tisch.",
        "Die Besprechung ist im zweiten Stock.",
        "Wir müssen heute Brot und Milch kaufen.",
        "Das Fenster in der Küche ist offen.",
        "Mein Bruder wohnt in der Nähe der alten Brücke.",
        "Der Brief kam am Dienstagnachmittag an.",
        "Im Zimmer stehen vier Stühle.",
        "Sie ging nach dem Mittagessen zum Bahnhof.",
        "Der Laden schließt heute um sechs Uhr.",
    ),
    "fr": (
        "Le train part à sept heures du matin.",
        "Pose les livres sur la table, s'il te plaît.",
        "La réunion est au deuxième étage.",
        "Nous devons acheter du pain et du lait aujourd'hui.",
        "La fenêtre de la cuisine est ouverte.",
        "Mon frère habite près du vieux pont.",
        "La lettre est arrivée mardi après-midi.",
        "Il y a quatre chaises dans la pièce.",
        "Elle est allée à la gare après le déjeuner.",
        "Le magasin ferme à six heures ce soir.",
    ),
    "ur": (
        "ریل گاڑی صبح سات بجے روانہ ہوتی ہے۔",
        "براہ کرم کتابیں میز پر رکھ دیں۔",
        "اجلاس دوسری منزل پر ہے۔",
        "ہمیں آج روٹی اور دودھ خریدنا ہے۔",
        "باورچی خانے کی کھڑکی کھلی ہے۔",
        "میرا بھائی پرانے پل کے قریب رہتا ہے۔",
        "خط منگل کی دوپہر کو پہنچا۔",
        "کمرے میں چار کرسیاں ہیں۔",
        "وہ دوپہر کے کھانے کے بعد اسٹیشن گئی۔",
        "دکان آج شام چھ بجے بند ہوتی ہے۔",
    ),
}

#: Short conversational turns of the MELD-shaped English part (realistic
#: profile), neutral in content: one to twelve words, most of them under six,
#: as MELD's lines from a sitcom are (its turns last 2.5 s at the median; the
#: acted sentences of ``SENTENCES`` take about twice as long as these).
CONVERSATION_LINES: tuple[str, ...] = (
    "Okay.",
    "Hey.",
    "Really?",
    "Oh, right.",
    "Where is he?",
    "I know.",
    "What is that?",
    "Are you coming?",
    "It is on the table.",
    "We talked about it yesterday.",
    "Did you call her back?",
    "I think so.",
    "Just a second.",
    "So what did he say?",
    "She is in the other room.",
    "Can I ask you something?",
    "Wait, which one?",
    "You have to see this.",
    "Well, I guess we could go tomorrow.",
    "He said he would be here at eight.",
    "Okay, so we meet at the coffee house after work.",
    "No.",
    "I was going to tell you about the apartment.",
    "Look, it is not about the money, it is about the plan.",
)

#: eSpeak NG voice variants used as speakers, in order (speaker ``s<k>`` of a
#: language uses its k-th variant). No variant is used by two languages
#: (disjoint speakers, as in real corpora). The first six of each language
#: are the voices of DEMO_VERSION 1; the lists are as long as the realistic
#: profile needs (ESD 10, EmoDB 10, CaFE 12, URDU 29 speakers), except
#: English (MELD, 237 real speakers), which takes every variant of the
#: eSpeak NG data that no other language uses and that is voiced: 41 (all of
#: them but ``whisper`` and ``whisperf``, whose unvoiced speech cannot carry
#: the pitch cues of the rule table). Its first six play MELD's six main
#: characters (three female, three male voices).
SPEAKER_VARIANTS: dict[str, tuple[str, ...]] = {
    "en": (
        "f1", "m3", "linda", "m1", "f5", "paul", "Alex", "edward", "Andy", "rob",
        "AnxiousAndy", "Demonic", "Mr serious", "RicishayMax", "RicishayMax2",
        "RicishayMax3", "UniRobot", "anikaRobot", "croak", "fast", "iven3",
        "iven4", "kaukovalta", "klatt", "klatt2", "klatt3", "klatt4", "klatt5",
        "klatt6", "robosoft", "robosoft2", "robosoft3", "robosoft4", "robosoft5",
        "robosoft6", "robosoft7", "robosoft8", "shelby", "steph3", "victor", "zac",
    ),
    "zh": ("f2", "m6", "anika", "m2", "steph", "Mario", "Lee", "Nguyen", "adam", "max"),
    "de": (
        "f3", "m4", "belinda", "m7", "Andrea", "robert", "norbert", "boris",
        "gustave", "Hugo",
    ),
    "fr": (
        "f4", "m5", "aunty", "m8", "Annie", "Michael", "michel", "antonio",
        "benjamin", "caleb", "david", "ed",
    ),
    "ur": (
        "Alicia", "Gene", "grandma", "Denis", "steph2", "travis", "Diogo", "Gene2",
        "Henrique", "Jacky", "Marco", "Mike", "Reed", "Storm", "Tweaky", "announcer",
        "edward2", "grandpa", "ian", "iven", "iven2", "john", "marcelo", "miguel",
        "mike2", "pablo", "pedro", "quincy", "sandro",
    ),
}  # fmt: skip

#: Largest ``n_speakers`` of the balanced profile (voices of every language).
MAX_SPEAKERS = min(len(v) for v in SPEAKER_VARIANTS.values())

#: Real 4-class counts of EmoDB per speaker (file_lists/emodb-files.csv):
#: 339 utterances, angry 127, happy 71, neutral 79, sad 62.
EMODB_COUNTS: dict[str, dict[str, int]] = {
    "03": {"angry": 14, "happy": 7, "neutral": 11, "sad": 7},
    "08": {"angry": 12, "happy": 11, "neutral": 10, "sad": 9},
    "09": {"angry": 13, "happy": 4, "neutral": 9, "sad": 4},
    "10": {"angry": 10, "happy": 4, "neutral": 4, "sad": 3},
    "11": {"angry": 11, "happy": 8, "neutral": 9, "sad": 7},
    "12": {"angry": 12, "happy": 2, "neutral": 4, "sad": 4},
    "13": {"angry": 12, "happy": 10, "neutral": 9, "sad": 5},
    "14": {"angry": 16, "happy": 8, "neutral": 7, "sad": 10},
    "15": {"angry": 13, "happy": 6, "neutral": 11, "sad": 4},
    "16": {"angry": 14, "happy": 11, "neutral": 5, "sad": 9},
}

#: Real 4-class counts of CaFE per actor (cafe-files.csv): 6 sentences, neutral
#: in one intensity, the others in two: 42 per actor, 504 in all.
CAFE_COUNTS: dict[str, dict[str, int]] = {
    f"{actor:02d}": {"angry": 12, "happy": 12, "neutral": 6, "sad": 12}
    for actor in range(1, 13)
}

#: Real counts of URDU per speaker (urdu-files.csv): 400 utterances, 100 per
#: class, 29 speakers of whom 26 speak in one emotion only.
URDU_COUNTS: dict[str, dict[str, int]] = {
    "SF1": {"happy": 12}, "SF2": {"happy": 2}, "SF3": {"happy": 2},
    "SF4": {"happy": 4}, "SF5": {"happy": 4}, "SF6": {"happy": 14},
    "SF7": {"happy": 6}, "SF8": {"happy": 2}, "SF9": {"neutral": 4},
    "SF10": {"sad": 2}, "SF11": {"sad": 4}, "SM1": {"angry": 22},
    "SM2": {"angry": 28}, "SM3": {"angry": 2, "happy": 2, "neutral": 8},
    "SM4": {"angry": 48}, "SM5": {"happy": 8, "neutral": 72},
    "SM6": {"happy": 10, "sad": 4}, "SM7": {"happy": 28}, "SM17": {"happy": 2},
    "SM18": {"happy": 2}, "SM19": {"happy": 2}, "SM20": {"neutral": 10},
    "SM21": {"neutral": 4}, "SM22": {"neutral": 2}, "SM23": {"sad": 6},
    "SM24": {"sad": 38}, "SM25": {"sad": 40}, "SM26": {"sad": 2},
    "SM27": {"sad": 4},
}  # fmt: skip

#: Real 4-class utterances per speaker and emotion in ESD (10 speakers per language).
ESD_PER_CLASS = 350

#: MELD's official 4-class rows per split (its annotation files, joy as
#: happy, anger as angry, sadness as sad): 8,245 / 897 / 2,211.
MELD_COUNTS: dict[str, dict[str, int]] = {
    "train": {"neutral": 4710, "happy": 1743, "angry": 1109, "sad": 683},
    "dev": {"neutral": 470, "happy": 163, "angry": 153, "sad": 111},
    "test": {"neutral": 1256, "happy": 402, "angry": 345, "sad": 208},
}

#: MELD's official splits, in the order the demo writes them (meld.SPLITS).
MELD_SPLITS: tuple[str, ...] = SPLITS

#: 4-class turns of MELD's six main characters over all splits (Ross 1,745,
#: Joey 1,715, Rachel 1,573, Phoebe 1,489, Monica 1,436, Chandler 1,424):
#: the relative sizes of the demo's six main speakers.
MELD_MAIN_TURNS: tuple[int, ...] = (1745, 1715, 1573, 1489, 1436, 1424)

#: Share of each split's 4-class turns that the six main characters speak.
MELD_MAIN_SHARE: dict[str, float] = {"train": 0.826, "dev": 0.853, "test": 0.817}

#: MELD's other speaker labels in the 4-class rows: 285 in all, of which
#: 243 speak in train, 40 in dev and 91 in test (a label may recur across
#: splits; the six main characters speak in every split).
MELD_MINOR_LABELS = 285
MELD_MINOR_PER_SPLIT: dict[str, int] = {"train": 243, "dev": 40, "test": 91}

#: Corpus profiles of the demo (``profile=`` of :func:`prepare_demo`):
#:
#: - ``realistic`` (default): each language mirrors the corpus the paper
#:   uses for it: MELD for English (official train/dev/test split, its
#:   class shares, six main speakers and many minor ones, short turns; see
#:   :func:`meld_split_counts`), ESD's 10 Mandarin speakers with balanced
#:   classes, EmoDB's 10 speakers and class imbalance, CaFE's 12 actors
#:   (half as much neutral), URDU's 29 speakers with their speaker-emotion
#:   confounding. Sizes are scaled so that a run stays within CPU minutes:
#:   MELD and ESD by ``large_scale`` (1/10: MELD 824 / 89 / 222 = 1,135
#:   utterances; ESD 35 per speaker and emotion, 1,400), the small corpora
#:   by ``small_scale`` (1/2: 179, 252 and 200 utterances; each speaker
#:   keeps every emotion it has, at least one utterance).
#: - ``balanced``: the corpus of DEMO_VERSION 1, ``n_speakers`` speakers per
#:   language (5) x 4 emotions x ``n_per_class_per_speaker`` (20), no
#:   confounding, no official split.
PROFILES: dict[str, dict[str, Any]] = {
    "realistic": {"large_scale": 0.1, "small_scale": 0.5},
    "balanced": {"n_speakers": 5, "n_per_class_per_speaker": 20},
}


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def _scaled(counts: Mapping[str, int], scale: float) -> dict[str, int]:
    """Scale per-emotion counts (round half up, at least 1 where there were any)."""
    return {
        emo: max(1, _round_half_up(n * scale)) for emo, n in counts.items() if n > 0
    }


def _apportion(total: int, weights: Sequence[float], minimum: int = 0) -> list[int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder).

    Every share gets ``minimum`` first; ties go to the earlier weight.

    Example
    -------
    >>> _apportion(10, [3, 1, 1], minimum=1)  # 1 each, then 4.2, 1.4, 1.4
    [5, 3, 2]
    """
    shares = [minimum] * len(weights)
    rest = total - minimum * len(weights)
    if rest < 0:
        raise ValueError(f"cannot give {len(weights)} shares {minimum} of {total}")
    exact = [rest * w / sum(weights) for w in weights]
    floors = [int(math.floor(x)) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (floors[i] - exact[i], i))
    for i in order[: rest - sum(floors)]:
        floors[i] += 1
    return [a + b for a, b in zip(shares, floors)]


def meld_split_counts(
    n_speakers: int, scale: float = 0.1
) -> list[dict[str, dict[str, int]]]:
    """Utterances per speaker, split and emotion of a MELD-shaped corpus.

    The rule (no randomness; the same for every seed):

    - **classes**: each (split, emotion) cell is MELD's 4-class count
      (``MELD_COUNTS``) times ``scale``, rounded half up, so the class
      shares and the split proportions are MELD's (1/10: train 471 neutral,
      174 happy, 111 angry, 68 sad; dev 47 / 16 / 15 / 11; test 126 / 40 /
      35 / 21).
    - **main speakers**: speakers 1-6 are MELD's six main characters; they
      speak in every split, ``MELD_MAIN_SHARE`` of its turns (about 83 %),
      shared in proportion to ``MELD_MAIN_TURNS``.
    - **minor speakers**: the other ``n_speakers - 6`` share the rest with
      a Zipf skew (the k-th minor speaker's weight is 1/k, at least one
      turn in each split it speaks in). As in MELD, the split each speaks
      in follows ``MELD_MINOR_PER_SPLIT``: the first (largest) minor
      speakers recur in train, dev and test, the last ones speak in test
      only, the others in train only.
    - **emotions**: within a split, the speakers' turns are matched to the
      split's emotion labels in a fixed pseudo-random order (CRC-32 of the
      split and position), so a speaker's emotions follow the class shares
      and a minor speaker with few turns may have one emotion only.

    Arguments
    ---------
    n_speakers : int
        Speakers, at least 7 (six main ones and one minor).
    scale : float
        Fraction of MELD's size.

    Returns
    -------
    list
        ``[{split: {emotion: count}} for each speaker in order]`` (splits
        and emotions a speaker does not have are left out).

    Example
    -------
    >>> counts = meld_split_counts(41)
    >>> [sum(sum(c.get(split, {}).values()) for c in counts)
    ...  for split in MELD_SPLITS]
    [824, 89, 222]
    >>> [sum(sum(e.values()) for e in c.values()) for c in counts[:8]]
    [175, 172, 157, 149, 144, 141, 46, 25]
    >>> counts[-1]  # the last minor speaker: one turn, in test only
    {'test': {'neutral': 1}}
    """
    n_minor = int(n_speakers) - len(MELD_MAIN_TURNS)
    if n_minor < 1:
        raise ValueError(
            f"meld_split_counts: a MELD-shaped corpus needs at least "
            f"{len(MELD_MAIN_TURNS) + 1} speakers (six main ones and a minor "
            f"one), got {n_speakers}."
        )
    n_in = {
        split: max(1, _round_half_up(n_minor * n / MELD_MINOR_LABELS))
        for split, n in MELD_MINOR_PER_SPLIT.items()
    }
    n_in["train"] = min(n_in["train"], n_minor)
    test_only = n_minor - n_in["train"]
    members = {
        "train": list(range(n_in["train"])),
        "dev": list(range(min(n_in["dev"], n_in["train"]))),
        "test": list(range(max(n_in["test"] - test_only, 0)))
        + list(range(n_in["train"], n_minor)),
    }
    order = {emo: i for i, emo in enumerate(EMOTIONS)}
    counts: list[dict[str, dict[str, int]]] = [{} for _ in range(int(n_speakers))]
    for split in MELD_SPLITS:
        cells = _scaled(MELD_COUNTS[split], scale)
        total = sum(cells.values())
        n_main = _round_half_up(total * MELD_MAIN_SHARE[split])
        turns = _apportion(n_main, MELD_MAIN_TURNS) + _apportion(
            total - n_main, [1.0 / (k + 1) for k in members[split]], minimum=1
        )
        speakers = list(range(len(MELD_MAIN_TURNS))) + [
            len(MELD_MAIN_TURNS) + k for k in members[split]
        ]
        pool = [spk for spk, n in zip(speakers, turns) for _ in range(n)]
        pool = [
            pool[i]
            for i in sorted(
                range(len(pool)), key=lambda i: (zlib.crc32(f"{split}/{i}".encode()), i)
            )
        ]
        labels = [emo for emo in EMOTIONS for _ in range(cells.get(emo, 0))]
        for spk, emo in zip(pool, labels):
            per_emo = counts[spk].setdefault(split, {})
            per_emo[emo] = per_emo.get(emo, 0) + 1
        for spk in speakers:
            counts[spk][split] = dict(
                sorted(counts[spk][split].items(), key=lambda kv: order[kv[0]])
            )
    return counts


def official_split_counts(
    profile: str = "realistic", languages: Sequence[str] = LANGUAGES
) -> dict[str, list[dict[str, dict[str, int]]]]:
    """Utterances per speaker, split and emotion of the languages with an
    official split (the MELD-shaped English of the realistic profile).

    Arguments
    ---------
    profile : str
        A key of ``PROFILES``.
    languages : sequence of str
        Languages to include.

    Returns
    -------
    dict
        ``{lang: [{split: {emotion: count}} for each speaker]}``, only for
        languages with an official split (none in the balanced profile).

    Example
    -------
    >>> list(official_split_counts("realistic")), official_split_counts("balanced")
    (['en'], {})
    """
    if profile != "realistic" or "en" not in languages:
        return {}
    scale = PROFILES[profile]["large_scale"]
    return {"en": meld_split_counts(len(SPEAKER_VARIANTS["en"]), scale)}


def speaker_counts(
    profile: str = "realistic",
    languages: Sequence[str] = LANGUAGES,
    n_speakers: int | None = None,
    n_per_class_per_speaker: int | None = None,
) -> dict[str, list[dict[str, int]]]:
    """Utterances per speaker and emotion of a demo profile.

    Arguments
    ---------
    profile : str
        A key of ``PROFILES``.
    languages : sequence of str
        Languages to include.
    n_speakers : int, optional
        Balanced profile: speakers per language (default: ``PROFILES``).
    n_per_class_per_speaker : int, optional
        Balanced profile: utterances per speaker and emotion (default:
        ``PROFILES``).

    Returns
    -------
    dict
        ``{lang: [ {emotion: count} for each speaker in order ]}``; for a
        language with an official split (:func:`official_split_counts`), the sum
        over its splits.

    Example
    -------
    >>> counts = speaker_counts("realistic")
    >>> [len(counts[lang]) for lang in LANGUAGES]
    [41, 10, 10, 12, 29]
    >>> {lang: sum(sum(s.values()) for s in counts[lang]) for lang in counts}
    {'en': 1135, 'zh': 1400, 'de': 179, 'fr': 252, 'ur': 200}
    >>> speaker_counts("balanced", ["de"], n_speakers=1, n_per_class_per_speaker=2)
    {'de': [{'neutral': 2, 'happy': 2, 'angry': 2, 'sad': 2}]}
    """
    if profile == "balanced":
        defaults = PROFILES["balanced"]
        n_spk = defaults["n_speakers"] if n_speakers is None else n_speakers
        n_per = n_per_class_per_speaker or defaults["n_per_class_per_speaker"]
        return {
            lang: [{emo: int(n_per) for emo in EMOTIONS} for _ in range(int(n_spk))]
            for lang in languages
        }
    scales = PROFILES[profile]
    esd = _scaled({emo: ESD_PER_CLASS for emo in EMOTIONS}, scales["large_scale"])
    small = scales["small_scale"]
    meld = []
    for per_split in official_split_counts(profile, ["en"])["en"]:
        total: dict[str, int] = {}
        for per_emo in per_split.values():
            for emo, n in per_emo.items():
                total[emo] = total.get(emo, 0) + n
        meld.append(total)
    tables = {
        "en": meld,
        "zh": [esd] * 10,
        "de": [_scaled(c, small) for c in EMODB_COUNTS.values()],
        "fr": [_scaled(c, small) for c in CAFE_COUNTS.values()],
        "ur": [_scaled(c, small) for c in URDU_COUNTS.values()],
    }
    order = {emo: i for i, emo in enumerate(EMOTIONS)}
    return {
        lang: [
            dict(sorted(c.items(), key=lambda kv: order[kv[0]])) for c in tables[lang]
        ]
        for lang in languages
    }
