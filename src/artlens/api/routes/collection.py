"""``GET /api/facets``, ``/api/health`` and ``/api/stats``."""

from __future__ import annotations

from fastapi import APIRouter, Request

from artlens.api.routes._common import service
from artlens.api.schemas import FacetsResponse, Health, StatsResponse

router = APIRouter(tags=["collection"])


@router.get("/api/facets", response_model=FacetsResponse)
def facets(request: Request):
    """Filterable metadata columns with their value counts over the whole collection."""
    return service(request).facets()


@router.get("/api/health", response_model=Health)
def health(request: Request):
    return service(request).health()


@router.get("/api/stats", response_model=StatsResponse)
def stats(request: Request):
    """What the collection holds, which optional features are on, and the request limits."""
    return service(request).stats()
