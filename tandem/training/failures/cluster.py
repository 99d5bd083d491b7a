"""Failure categories: k-means on the embeddings with k chosen by silhouette, each cluster named by
its top TF-IDF terms (class-based: a cluster's texts weighed against all failures)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import silhouette_score


class ClusteringError(ValueError):
    """Too few failures to form the requested number of categories."""


@dataclass
class Clustering:
    labels: np.ndarray
    centres: np.ndarray
    k: int
    silhouette_by_k: dict[int, float]


def choose_clusters(vectors: np.ndarray, k_min: int, k_max: int, seed: int = 0) -> Clustering:
    """The k in [k_min, k_max] with the best cosine silhouette.

    With fewer than k_min + 1 failures, k is capped at n - 1 (the report says so)."""
    n = len(vectors)
    k_max = min(k_max, n - 1)
    if k_max < 2:
        raise ClusteringError(f"{n} failures cannot form categories; evaluate more items")
    best: tuple[float, KMeans] | None = None
    scores: dict[int, float] = {}
    for k in range(min(k_min, k_max), k_max + 1):
        model = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(vectors)
        if len(set(model.labels_)) < 2:
            continue
        scores[k] = float(silhouette_score(vectors, model.labels_, metric="cosine"))
        if best is None or scores[k] > best[0]:
            best = (scores[k], model)
    if best is None:
        raise ClusteringError("every clustering collapsed to one group: the failures are near-identical")
    model = best[1]
    return Clustering(model.labels_, model.cluster_centers_, model.n_clusters, scores)


def top_terms(texts: list[str], labels: np.ndarray, k: int, n_terms: int) -> list[list[str]]:
    vectorizer = TfidfVectorizer(
        stop_words="english",
        ngram_range=(1, 2),
        min_df=1,
        max_features=20_000,
        token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b",
        sublinear_tf=True,
    )
    matrix = vectorizer.fit_transform(texts)
    vocab = np.array(vectorizer.get_feature_names_out())
    terms = []
    for c in range(k):
        weights = np.asarray(matrix[labels == c].mean(axis=0)).ravel()
        terms.append([str(t) for t in vocab[np.argsort(-weights)[:n_terms]] if t])
    return terms


def nearest_to_centre(
    vectors: np.ndarray, labels: np.ndarray, centres: np.ndarray, cluster: int, count: int
) -> list[int]:
    members = np.flatnonzero(labels == cluster)
    distances = np.linalg.norm(vectors[members] - centres[cluster], axis=1)
    return [int(i) for i in members[np.argsort(distances)[:count]]]
