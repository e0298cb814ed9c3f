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
from collections.abc import Mapping, Sequence
from typing import Any

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

#: eSpeak NG voice variants used as speakers, in order (speaker ``s<k>`` of a
#: language uses its k-th variant). No variant is used by two languages
#: (disjoint speakers, as in real corpora). The first six of each language
#: are the voices of DEMO_VERSION 1; the lists are as long as the realistic
#: profile needs (ESD 10, EmoDB 10, CaFE 12, URDU 29 speakers).
SPEAKER_VARIANTS: dict[str, tuple[str, ...]] = {
    "en": ("f1", "m3", "linda", "m1", "f5", "paul", "Alex", "edward", "Andy", "rob"),
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

#: Corpus profiles of the demo (``profile=`` of :func:`prepare_demo`):
#:
#: - ``realistic`` (default): each language mirrors the corpus it stands in
#:   for: ESD's 10 English and 10 Mandarin speakers with balanced classes,
#:   EmoDB's 10 speakers and class imbalance, CaFE's 12 actors (half as much
#:   neutral), URDU's 29 speakers with their speaker-emotion confounding.
#:   Sizes are scaled so that a run stays within a CPU minute: ESD by
#:   ``esd_scale`` (1/10: 35 per speaker and emotion, 1,400 per language),
#:   the small corpora by ``small_scale`` (1/2: 179, 252 and 200 utterances;
#:   each speaker keeps every emotion it has, at least one utterance).
#:   ESD is 5.6 to 7.8 times larger than each small language (real: 28 to 41).
#: - ``balanced``: the corpus of DEMO_VERSION 1, ``n_speakers`` speakers per
#:   language (5) x 4 emotions x ``n_per_class_per_speaker`` (20), no
#:   confounding.
PROFILES: dict[str, dict[str, Any]] = {
    "realistic": {"esd_scale": 0.1, "small_scale": 0.5},
    "balanced": {"n_speakers": 5, "n_per_class_per_speaker": 20},
}


def _scaled(counts: Mapping[str, int], scale: float) -> dict[str, int]:
    """Scale per-emotion counts (round half up, at least 1 where there were any)."""
    return {
        emo: max(1, int(math.floor(n * scale + 0.5)))
        for emo, n in counts.items()
        if n > 0
    }


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
        ``{lang: [ {emotion: count} for each speaker in order ]}``.

    Example
    -------
    >>> counts = speaker_counts("realistic")
    >>> [len(counts[lang]) for lang in LANGUAGES]
    [10, 10, 10, 12, 29]
    >>> {lang: sum(sum(s.values()) for s in counts[lang]) for lang in counts}
    {'en': 1400, 'zh': 1400, 'de': 179, 'fr': 252, 'ur': 200}
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
    esd = _scaled({emo: ESD_PER_CLASS for emo in EMOTIONS}, scales["esd_scale"])
    small = scales["small_scale"]
    tables = {
        "en": [esd] * 10,
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
