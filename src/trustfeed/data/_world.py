"""A seeded short-video world: users, creators, videos and a feed's event log.

The demo, the tests and the benchmarks need a log that behaves like a real
short-video feed without shipping anyone's personal data. ``generate_world``
draws one from a small generative model and returns its ground truth with it,
so a test can ask whether a recommender found what is really there.

The model
---------
* **Users** have an interest mixture over topics, ``Dirichlet(0.25)`` (most
  users care about two or three topics), an activity level (log-normal,
  sigma 1.2: heavy-tailed, mean/median ≈ 2 as in KuaiRand-1K, where users
  have median 22 and mean 43 random-exposure rows) and two propensities
  (how easily they are pleased; how readily they press like/share/follow).
* **Creators** have a home topic and a popularity (Pareto, alpha 1.2).
* **Videos** belong to a creator, take the creator's home topic 80 % of the
  time, have a latent quality, and a duration drawn log-normally around the
  KuaiRand-1K median (81 s, log-sd 1.03), clipped to 5 s … 10 min. A quarter
  of the catalogue exists before the period starts; the rest is uploaded
  uniformly over it, so cold items keep arriving. ``item_id`` follows upload
  order.
* **Exposure**: each impression picks a user by activity and a time with a
  daily rhythm, then a video *already published at that time*: 55 % from a
  topic drawn from the user's interests (weighted by creator popularity and
  quality), 25 % trending (popularity-weighted among the last 3 days'
  uploads), 20 % uniformly random. A user sees a video at most once, and
  expects at most 30 % of the catalogue (the heaviest users are capped).
* **Behaviour** depends on an affinity: ``1.0·log(K·interest[topic]) +
  0.5·quality + user bias + noise``. A quick swipe-away (``skip``, < 3 s)
  is likelier for low affinity and long videos; otherwise the watch ratio
  rises with affinity and falls with duration. Likes, comments, shares and
  follows rise with affinity and watch ratio; ``hate`` falls with affinity.

Events
------
Every impression gives exactly one ``view`` or ``skip`` row carrying
``watch_ms`` and ``duration_ms``; each further action (``like``, ``comment``,
``share``, ``follow``, ``hate``) adds a row for the same user and video a
little later, carrying the same ``watch_ms`` (so a per-row watch ratio is
always meaningful; sum ``watch_ms`` over ``view``/``skip`` rows only to get
watch time). ``n_events`` counts impressions.

Calibration
-----------
The behaviour weights were fitted (Nelder-Mead on skip, long-view and
watch-ratio rates plus the mean watch ratio per duration band; then the
action intercepts on their log-odds) so that under *uniformly random*
exposure (:func:`random_exposure`) the rates match KuaiRand-1K's
random-exposure log (Gao et al., "KuaiRand: An Unbiased Sequential
Recommendation Dataset with Randomly Exposed Videos", CIKM 2022,
kuairand.com, CC BY-SA 4.0; figures measured on
``log_random_4_22_to_5_08_1k.csv``, 43,028 impressions). Per impression,
default world, seed 42::

    rate                        KuaiRand-1K   model,     band tested   generated
                                random        random     (random)      log
    quick swipe-away (< 3 s)    63.3 %        59.2 %     52 – 70 %     44.0 %
    long view (≥ min(18 s, d))   8.4 %         9.7 %      6 – 12 %     17.2 %
    watch ratio, median          0.034         0.035      0.02 – 0.05   0.058
    watch ratio, mean (≤ 1)      0.125         0.111      0.09 – 0.15   0.156
    like                         0.56 %        0.58 %     0.35 – 0.85 % 1.16 %
    share (KuaiRand "forward")   0.065 %       0.077 %    0.03 – 0.12 % 0.125 %
    comment                      0.030 %       0.028 %    0.01 – 0.06 % 0.049 %
    follow                       0.019 %       0.020 %    0.005 – 0.04 % 0.047 %
    hate                         0.081 %       0.072 %    0.04 – 0.13 % 0.056 %

Long view follows KuaiRand's own flag (it agrees with ``play ≥ min(18 s,
duration)`` on 99.9 % of rows). KuaiRand's watch ratio can exceed 1
(replays; uncapped mean 0.139); the model caps it at 1, so the capped mean
is the one compared. The mean watch ratio per duration band also follows
KuaiRand's (0.43 under 15 s down to 0.02 over 5 min). The model keeps a
structural gap (slightly fewer swipe-aways, slightly more long views than
KuaiRand); the bands allow for it.

The generated log itself is *personalised* exposure (80 % interest-driven
or trending), which engages more than random exposure. The KuaiRand copy we
hold has no standard-feed rates to set beside the random slice, so the lift
is a design choice, not a measurement: the match weight (``W_MATCH``) was
set so that likes and long views come out about 1.5–2.5× their random
rates, skips about 15 points lower and hates lower: enough for the interest
signal to be learnable, while skips still dominate and likes stay near 1 %,
as on real feeds. ``tests/test_world.py`` pins both sets of bands.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from trustfeed.data._schema import EVENTS

#: 2024-01-01T00:00:00Z, the start of the generated period.
START = 1_704_067_200.0
DAY_S = 86_400.0

TOPIC_NAMES: tuple[str, ...] = (
    "comedy", "food", "pets", "music", "dance", "sports", "gaming", "beauty",
    "fashion", "travel", "diy", "science", "news", "cars", "fitness", "parenting",
    "art", "education", "nature", "tech",
)  # fmt: skip

# --- world shape -------------------------------------------------------------
INTEREST_ALPHA = 0.25
ACTIVITY_SIGMA = 1.2
CREATOR_PARETO = 1.2
HOME_TOPIC_SHARE = 0.8
DURATION_MEDIAN_MS = 81_000.0  # KuaiRand-1K median duration
DURATION_LOG_SD = 1.03  # KuaiRand-1K sd of log duration
DURATION_CLIP_MS = (5_000.0, 600_000.0)
PRE_PUBLISHED_SHARE = 0.25
PRE_PUBLISHED_DAYS = 7.0
#: A user's expected impressions are capped at this share of the catalogue, so the
#: heaviest users can still see only videos they have not seen.
MAX_SEEN_SHARE = 0.3
#: Relative traffic per hour of day (UTC), a typical evening-peaked short-video curve.
HOURLY = np.array(
    [3, 2, 1.5, 1, 1, 1, 1.5, 2.5, 3.5, 4, 4, 4.5, 5.5, 5, 4.5, 4.5, 4.5, 5, 6, 7, 8, 8.5, 7, 5]
)

# --- exposure ----------------------------------------------------------------
P_INTEREST, P_TRENDING = 0.55, 0.25  # the rest is uniformly random
TRENDING_WINDOW_S = 3 * DAY_S
EXPOSE_QUALITY = 0.5

# --- behaviour (fitted to KuaiRand-1K random exposure, see the docstring) ------
W_MATCH, W_QUALITY, AFFINITY_NOISE = 1.0, 0.5, 0.7
USER_BIAS_SD, ACTION_BIAS_SD = 0.5, 0.8
MATCH_CLIP = (-3.0, 3.0)
SKIP_MS = 3_000.0
SKIP0, SKIP_DUR = -1.03, 0.24
RATIO0, RATIO_AFF, RATIO_DUR, RATIO_NOISE = -0.77, 0.39, 1.16, 0.95
LONG_VIEW_MS = 18_000.0
ACTION_AFF, ACTION_RATIO = 0.6, 2.0
LIKE0, SHARE0, COMMENT0, FOLLOW0 = -5.68, -7.96, -8.81, -9.09
HATE0, HATE_AFF = -8.9, 0.7
ACTIONS: tuple[str, ...] = ("like", "comment", "share", "follow")


@dataclass(frozen=True)
class GroundTruth:
    """Latent variables behind the log, for tests and offline evaluation only."""

    item_topic: np.ndarray  # int, index into ``World.topics``
    item_quality: np.ndarray  # float, standard normal-ish
    user_bias: np.ndarray  # float, how easily each user is pleased
    user_action_bias: np.ndarray  # float, how readily each user likes, shares …
    creator_popularity: np.ndarray  # float, Pareto


@dataclass(frozen=True)
class World:
    """A generated short-video world and its time-ordered event log.

    ``users.user_id`` and ``items.item_id`` are ``0 … n-1``, so they index the
    rows of ``user_interest`` and the arrays in ``truth`` directly.
    """

    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    creators: pd.DataFrame
    user_interest: np.ndarray  # n_users × n_topics, rows sum to 1
    topics: tuple[str, ...]
    start: float
    end: float
    truth: GroundTruth


def generate_world(
    *,
    n_users: int = 2000,
    n_creators: int = 200,
    n_items: int = 5000,
    n_events: int = 200_000,
    n_topics: int = 20,
    days: int = 14,
    seed: int = 42,
) -> World:
    """Draw a world; the same arguments always give the same world.

    ``n_events`` counts impressions (one ``view``/``skip`` row each); action
    rows come on top. A tiny world can give fewer impressions, since a user
    sees each video at most once.

    >>> w = generate_world(n_users=30, n_creators=5, n_items=60, n_events=500, seed=1)
    >>> int((w.interactions["event"].isin(["view", "skip"])).sum())
    500
    >>> w.interactions["timestamp"].is_monotonic_increasing
    True
    """
    _check_sizes(n_users, n_creators, n_items, n_events, n_topics, days)
    rng = np.random.default_rng(seed)
    topics = _topic_names(n_topics)
    end = START + days * DAY_S
    users, interest, user_bias, action_bias = _draw_users(rng, n_users, n_topics, topics)
    creators, home, popularity = _draw_creators(rng, n_creators, n_topics, topics)
    items, item_topic, quality = _draw_items(rng, n_items, home, popularity, topics, end)
    truth = GroundTruth(item_topic, quality, user_bias, action_bias, popularity)
    world = World(pd.DataFrame(), items, users, creators, interest, topics, START, end, truth)
    uu, ii, tt = _expose(rng, world, n_events)
    log = _respond(rng, world, uu, ii, tt)
    return World(log, items, users, creators, interest, topics, START, end, truth)


def random_exposure(world: World, n: int, *, seed: int = 0) -> pd.DataFrame:
    """What the world's users would do if shown ``n`` uniformly random published videos.

    The analogue of KuaiRand's random-exposure slice: free of any feed's
    exposure bias, so it serves for calibration and unbiased evaluation.
    Users are drawn by activity, times uniformly over the period.
    """
    rng = np.random.default_rng(seed)
    published = world.items["published_at"].to_numpy()
    uu = rng.choice(len(world.users), size=n, p=_activity_share(world))
    tt = rng.uniform(world.start, world.end, size=n)
    n_pub = np.searchsorted(published, tt, side="right")
    ii = np.minimum((rng.random(n) * n_pub).astype(np.int64), n_pub - 1)
    return _respond(rng, world, uu, ii, tt)


def split_by_time(interactions: pd.DataFrame, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The first ``fraction`` of rows by time, and the rest.

    Rows with the same timestamp stay on one side, so ``before`` never holds
    anything later than ``after``. Both parts get a fresh index.

    >>> df = pd.DataFrame({"user_id": [1, 2, 3, 4], "item_id": [5, 6, 7, 8],
    ...                    "timestamp": [3.0, 1.0, 2.0, 2.0]})
    >>> before, after = split_by_time(df, 0.5)
    >>> before["timestamp"].tolist(), after["timestamp"].tolist()
    ([1.0], [2.0, 2.0, 3.0])
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    ordered = interactions
    if not interactions["timestamp"].is_monotonic_increasing:
        ordered = interactions.sort_values("timestamp", kind="stable")
    ts = ordered["timestamp"].to_numpy()
    cut = round(fraction * len(ts))
    if 0 < cut < len(ts):
        cut = int(np.searchsorted(ts, ts[cut], side="left"))
    return ordered.iloc[:cut].reset_index(drop=True), ordered.iloc[cut:].reset_index(drop=True)


# --- drawing the world ----------------------------------------------------------


def _check_sizes(*sizes: int) -> None:
    names = ("n_users", "n_creators", "n_items", "n_events", "n_topics", "days")
    for name, value in zip(names, sizes, strict=True):
        low = 0 if name == "n_events" else 1
        if int(value) != value or value < low:
            raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}")


def _topic_names(n_topics: int) -> tuple[str, ...]:
    extra = tuple(f"topic-{i + 1}" for i in range(len(TOPIC_NAMES), n_topics))
    return (TOPIC_NAMES + extra)[:n_topics]


def _draw_users(
    rng: np.random.Generator, n: int, k: int, topics: tuple[str, ...]
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    interest = rng.dirichlet(np.full(k, INTEREST_ALPHA), size=n)
    activity = rng.lognormal(0.0, ACTIVITY_SIGMA, size=n)
    bias = rng.normal(0.0, USER_BIAS_SD, size=n)
    action_bias = rng.normal(0.0, ACTION_BIAS_SD, size=n)
    users = pd.DataFrame(
        {
            "user_id": np.arange(n, dtype=np.int64),
            "top_topic": pd.array(np.asarray(topics)[interest.argmax(axis=1)], dtype="str"),
            "activity": activity / activity.mean(),
        }
    )
    return users, interest, bias, action_bias


def _draw_creators(
    rng: np.random.Generator, n: int, k: int, topics: tuple[str, ...]
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    home = rng.integers(0, k, size=n)
    popularity = rng.pareto(CREATOR_PARETO, size=n) + 1.0
    creators = pd.DataFrame(
        {
            "creator_id": np.arange(n, dtype=np.int64),
            "home_topic": pd.array(np.asarray(topics)[home], dtype="str"),
            "popularity": popularity,
        }
    )
    return creators, home, popularity


def _draw_items(
    rng: np.random.Generator,
    n: int,
    creator_home: np.ndarray,
    popularity: np.ndarray,
    topics: tuple[str, ...],
    end: float,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    # Popular creators upload more (sqrt: output grows slower than audience).
    output = np.sqrt(popularity)
    creator = rng.choice(len(creator_home), size=n, p=output / output.sum())
    home = creator_home[creator]
    own = rng.random(n) < HOME_TOPIC_SHARE
    topic = np.where(own, home, rng.integers(0, len(topics), size=n))
    creator_quality = np.random.default_rng(rng.integers(2**63)).normal(size=len(creator_home))
    quality = 0.5 * creator_quality[creator] + np.sqrt(0.75) * rng.normal(size=n)
    duration = np.clip(
        np.round(rng.lognormal(np.log(DURATION_MEDIAN_MS), DURATION_LOG_SD, size=n)),
        *DURATION_CLIP_MS,
    )
    n_pre = max(1, round(PRE_PUBLISHED_SHARE * n))
    published = np.concatenate(
        [
            rng.uniform(START - PRE_PUBLISHED_DAYS * DAY_S, START, size=n_pre),
            rng.uniform(START, end, size=n - n_pre),
        ]
    )
    order = np.argsort(published, kind="stable")  # item_id follows upload order
    items = pd.DataFrame(
        {
            "item_id": np.arange(n, dtype=np.int64),
            "creator_id": creator[order].astype(np.int64),
            "topic": pd.array(np.asarray(topics)[topic[order]], dtype="str"),
            "duration_ms": duration[order].astype(np.float64),
            "published_at": np.round(published[order], 3),
        }
    )
    return items, topic[order], quality[order]


def _activity_share(world: World, n_events: int = 0) -> np.ndarray:
    """Each user's share of impressions; with ``n_events``, capped (see ``MAX_SEEN_SHARE``)."""
    share = world.users["activity"].to_numpy() / world.users["activity"].sum()
    if n_events > 0:
        cap = MAX_SEEN_SHARE * len(world.items) / n_events
        for _ in range(5):  # clipping and renormalising settles in a few rounds
            share = np.minimum(share, cap)
            share = share / share.sum()
    return share


# --- exposure -----------------------------------------------------------------------


def _expose(
    rng: np.random.Generator, world: World, n_events: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, item, time) of ``n_events`` distinct impressions, in no particular order."""
    n_items = len(world.items)
    uu = np.empty(0, np.int64)
    ii = np.empty(0, np.int64)
    tt = np.empty(0, np.float64)
    for _ in range(12):  # top-up rounds replace repeated (user, item) pairs
        need = n_events - len(uu)
        if need <= 0:
            break
        u, i, t = _draw_impressions(rng, world, int(need * 1.2) + 16, n_events)
        uu, ii, tt = np.concatenate([uu, u]), np.concatenate([ii, i]), np.concatenate([tt, t])
        _, first = np.unique(uu * n_items + ii, return_index=True)
        first.sort()
        uu, ii, tt = uu[first], ii[first], tt[first]
    if len(uu) > n_events:
        keep = np.sort(rng.choice(len(uu), size=n_events, replace=False))
        uu, ii, tt = uu[keep], ii[keep], tt[keep]
    return uu, ii, tt


def _draw_impressions(
    rng: np.random.Generator, world: World, n: int, n_events: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    uu = rng.choice(len(world.users), size=n, p=_activity_share(world, n_events))
    days = round((world.end - world.start) / DAY_S)
    hour = rng.choice(24, size=n, p=HOURLY / HOURLY.sum())
    tt = world.start + rng.integers(0, days, size=n) * DAY_S + (hour + rng.random(n)) * 3600.0
    tt = np.round(tt, 3)
    published = world.items["published_at"].to_numpy()
    weight = world.truth.creator_popularity[world.items["creator_id"].to_numpy()] * np.exp(
        EXPOSE_QUALITY * world.truth.item_quality
    )
    ii = _uniform_published(rng, published, tt)
    source = rng.random(n)
    trending = source < P_INTEREST + P_TRENDING
    ii = np.where(trending, _trending(rng, published, weight, tt), ii)
    interest = source < P_INTEREST
    by_topic = _by_interest(rng, world, weight, uu[interest], tt[interest])
    ii[interest] = np.where(by_topic >= 0, by_topic, ii[interest])
    return uu, ii, tt


def _uniform_published(
    rng: np.random.Generator, published: np.ndarray, tt: np.ndarray
) -> np.ndarray:
    n_pub = np.searchsorted(published, tt, side="right")
    return np.minimum((rng.random(len(tt)) * n_pub).astype(np.int64), n_pub - 1)


def _weighted_in_range(
    rng: np.random.Generator, cum: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """Position in ``[lo, hi)`` drawn with weights whose running sum is ``cum``."""
    cum0 = np.concatenate([[0.0], cum])
    x = cum0[lo] + rng.random(len(lo)) * (cum0[hi] - cum0[lo])
    pos = np.searchsorted(cum, x, side="right")
    return np.clip(pos, lo, np.maximum(hi - 1, lo))


def _trending(
    rng: np.random.Generator, published: np.ndarray, weight: np.ndarray, tt: np.ndarray
) -> np.ndarray:
    hi = np.searchsorted(published, tt, side="right")
    lo = np.searchsorted(published, tt - TRENDING_WINDOW_S, side="left")
    lo = np.where(hi - lo < 20, 0, lo)  # too few recent uploads: all of the catalogue
    return _weighted_in_range(rng, np.cumsum(weight), lo, hi)


def _by_interest(
    rng: np.random.Generator, world: World, weight: np.ndarray, uu: np.ndarray, tt: np.ndarray
) -> np.ndarray:
    """An item of a topic drawn from each user's interests, or -1 if none is out yet."""
    topic = world.truth.item_topic
    cum_interest = np.cumsum(world.user_interest[uu], axis=1)
    drawn = (cum_interest < rng.random((len(uu), 1)) * cum_interest[:, -1:]).sum(axis=1)
    drawn = np.minimum(drawn, len(world.topics) - 1)
    published = world.items["published_at"].to_numpy()
    order = np.lexsort((published, topic))  # by topic, then upload time
    span = (world.end - published[0]) + 1.0
    keys = topic[order] * span + (published[order] - published[0])
    lo = np.searchsorted(topic[order], drawn, side="left")
    hi = np.searchsorted(keys, drawn * span + (tt - published[0]), side="right")
    pos = _weighted_in_range(rng, np.cumsum(weight[order]), lo, hi)
    return np.where(hi > lo, order[pos], -1)


# --- behaviour ------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _respond(
    rng: np.random.Generator, world: World, uu: np.ndarray, ii: np.ndarray, tt: np.ndarray
) -> pd.DataFrame:
    """The event rows that impressions (user ``uu`` saw item ``ii`` at ``tt``) produce."""
    n = len(uu)
    truth = world.truth
    duration = world.items["duration_ms"].to_numpy()[ii]
    k = len(world.topics)
    match = np.clip(np.log(k * world.user_interest[uu, truth.item_topic[ii]] + 1e-12), *MATCH_CLIP)
    affinity = (
        W_MATCH * match
        + W_QUALITY * truth.item_quality[ii]
        + truth.user_bias[uu]
        + rng.normal(0.0, AFFINITY_NOISE, size=n)
    )
    dur = np.log(duration / 30_000.0)
    skip = rng.random(n) < _sigmoid(SKIP0 - affinity + SKIP_DUR * dur)
    swipe_ms = np.minimum(rng.lognormal(np.log(1_500.0), 0.6, size=n), SKIP_MS - 1.0)
    ratio = _sigmoid(
        RATIO0 + RATIO_AFF * affinity - RATIO_DUR * dur + rng.normal(0, RATIO_NOISE, n)
    )
    ratio = np.where(ratio > 0.95, 1.0, ratio)  # the rest of the way: watched to the end
    watch = np.where(
        skip,
        np.minimum(swipe_ms, 0.5 * duration),
        np.clip(ratio * duration, np.minimum(SKIP_MS, duration), duration),
    )
    watch = np.round(watch)
    engage = ACTION_AFF * affinity + ACTION_RATIO * watch / duration + truth.user_action_bias[uu]
    intercepts = {"like": LIKE0, "comment": COMMENT0, "share": SHARE0, "follow": FOLLOW0}
    masks = {a: ~skip & (rng.random(n) < _sigmoid(c + engage)) for a, c in intercepts.items()}
    masks["hate"] = rng.random(n) < _sigmoid(HATE0 - HATE_AFF * affinity)
    return _rows(rng, uu, ii, tt, skip, watch, duration, masks)


def _rows(
    rng: np.random.Generator,
    uu: np.ndarray,
    ii: np.ndarray,
    tt: np.ndarray,
    skip: np.ndarray,
    watch: np.ndarray,
    duration: np.ndarray,
    masks: dict[str, np.ndarray],
) -> pd.DataFrame:
    """One view/skip row per impression plus one row per action, sorted by time."""
    code = {name: i for i, name in enumerate(EVENTS)}
    parts = [np.arange(len(uu))]
    codes = [np.where(skip, code["skip"], code["view"])]
    times = [tt]
    for name, mask in masks.items():
        idx = np.flatnonzero(mask)
        parts.append(idx)
        codes.append(np.full(len(idx), code[name]))
        # An action lands while or just after watching: after the impression starts.
        times.append(
            tt[idx] + np.round(watch[idx] * rng.uniform(0.5, 1.0, len(idx))) / 1000.0 + 0.001
        )
    src = np.concatenate(parts)
    ev = np.concatenate(codes)
    ts = np.concatenate(times)
    order = np.lexsort((ev, ts))
    src, ev, ts = src[order], ev[order], ts[order]
    return pd.DataFrame(
        {
            "user_id": uu[src].astype(np.int64),
            "item_id": ii[src].astype(np.int64),
            "timestamp": ts.astype(np.float64),
            "event": pd.Categorical.from_codes(ev, dtype=pd.CategoricalDtype(list(EVENTS))),
            "watch_ms": watch[src].astype(np.float64),
            "duration_ms": duration[src].astype(np.float64),
        }
    )
