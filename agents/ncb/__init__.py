"""A bureau's side of the backbone: the NCB adapter and the client over it."""
