"""The microscope: a static site, for any network and weights, of what each chosen layer learned."""

from ..weights.preprocessing import network_identity
from .site import Branch, Site, SiteSettings, branches, build_site, default_layers
from .store import PictureStore

__all__ = ["Branch", "PictureStore", "Site", "SiteSettings", "branches", "build_site", "default_layers",
           "network_identity"]
