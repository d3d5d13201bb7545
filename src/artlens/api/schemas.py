"""Response bodies of the API, as they appear in the OpenAPI schema at ``/openapi.json``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class FacetValue(BaseModel):
    value: str
    count: int


class SearchHit(BaseModel):
    id: int
    score: float = Field(description="Weighted mix of the aspect scores (cosine, -1..1)")
    aspects: dict[str, float] = Field(description="Cosine score of every aspect the query has (why it is similar)")
    metadata: dict[str, str]
    thumbnail: str = Field(examples=["/api/artworks/1/thumbnail"])


class SearchResponse(BaseModel):
    query: dict = Field(description="What was asked: text, id, liked ids or 'upload'")
    results: list[SearchHit]
    facets: dict[str, list[FacetValue]] = Field(description="Facet counts over these results")
    weights: dict[str, float] = Field(description="Aspect weights used (normalised to sum 1)")
    aspects: list[str] = Field(description="Aspects this query can be weighted by")
    took_ms: float


class ArtworkDetail(BaseModel):
    id: int
    md5: str
    width: int
    height: int
    size_bytes: int
    metadata: dict[str, str]
    aspects: list[str] = Field(description="Aspects in whose index the artwork is")
    thumbnail: str
    image: str = Field(description="A larger rendition (never the original file)")


class ArtworkSummary(BaseModel):
    id: int
    metadata: dict[str, str]
    thumbnail: str


class ArtworkPage(BaseModel):
    total: int
    offset: int
    results: list[ArtworkSummary]


class Facet(BaseModel):
    column: str
    kind: str = Field(description="'values', or 'decades' for year columns (filter by e.g. '1880s')")
    values: list[FacetValue]


class FacetsResponse(BaseModel):
    artworks: int
    facets: list[Facet]


class Health(BaseModel):
    status: str
    artworks: int
    aspects: list[str]
    version: str


class Features(BaseModel):
    """Which optional services answer on this server (the page calls only those)."""

    annotation: bool = Field(description="POST /api/annotate: the collection has label columns to predict")
    copyright: bool = Field(description="POST /api/copyright/check: a copyright registry is configured")
    artists: bool = Field(description="POST /api/artists/search: artist profiles are published")


class Limits(BaseModel):
    max_upload_bytes: int
    max_upload_pixels: int
    max_k: int
    default_k: int
    max_liked: int


class StatsResponse(BaseModel):
    collection: str = Field(description="Name of the collection folder")
    artworks: int
    skipped: int
    aspects: list[str]
    default_weights: dict[str, float]
    indexes: dict[str, dict]
    extractors: dict[str, dict]
    metadata_columns: list[str]
    text_columns: list[str]
    features: Features
    limits: Limits


class Label(BaseModel):
    label: str
    probability: float | None = None


class ColumnMatch(BaseModel):
    method: str = Field(description="'head' (the learned head's classifier) or 'probe' (on pretrained features)")
    nearest: float = Field(description="Similarity of the nearest labelled artwork to the upload")
    threshold: float = Field(description="Below this the nearest labelled works are far: a low percentile of "
                                         "the labelled works' similarities to their nearest labelled neighbour")
    weak: bool = Field(description="nearest < threshold: the labels are guesses")


class AnnotationResponse(BaseModel):
    labels: dict[str, list[Label]] = Field(description="Predicted values of each label column, best first")
    weak: bool = Field(description="Whether the nearest labelled works of some column are far from the upload")
    columns: dict[str, ColumnMatch] = Field(description="How each column was predicted and how near its labelled works are")


class FreeAlternative(BaseModel):
    id: int = Field(description="Id in the free collection")
    score: float = Field(description="Content similarity to the upload (cosine)")
    title: str | None = None
    artist: str | None = None
    owner: str | None = None
    licence: str | None = None
    thumbnail: str = Field(examples=["/api/artworks/1/thumbnail", "/api/copyright/free/1/thumbnail"])


class CopyrightResponse(BaseModel):
    verdict: str = Field(description="'registered' or 'not-registered'")
    registered: bool
    owner: str | None = None
    work: dict | None = Field(None, description="The registered work matched: id, owner, licence, title")
    closest: dict | None = Field(None, description="When not registered: the nearest registered work (id, title) "
                                 "and its score, below the threshold")
    score: float | None = None
    stage: str | None = None
    alternatives: list[FreeAlternative] = Field(description="Free-to-use works most similar to the upload")
    evidence: dict | None = Field(None, description="How it was decided: detector, search (exact or fast), threshold")


class DuplicateWork(BaseModel):
    id: int
    title: str | None = None
    artist: str | None = None
    score: float = Field(description="The work's best cosine to another work of its group")
    thumbnail: str = Field(examples=["/api/artworks/1/thumbnail"])


class DuplicateGroupAnswer(BaseModel):
    ids: list[int]
    scores: list[float] = Field(description="Per id: its best cosine to another work of the group")
    works: list[DuplicateWork]
    pairs: list[list[float]] = Field(description="The links found: [id, id, cosine], best first")


class DuplicatesResponse(BaseModel):
    threshold: float
    default_threshold: float = Field(description="The calibrated default (precision >= 0.95 on planted copies)")
    floor: float = Field(description="The lowest threshold the review can be re-grouped at")
    works: int = Field(description="Works reviewed")
    groups_total: int = Field(description="Groups at this threshold (the first 500 are listed)")
    groups: list[DuplicateGroupAnswer]
