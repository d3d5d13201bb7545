"""Routers by concern: search, artworks, collection, annotation, copyright, and the page."""
