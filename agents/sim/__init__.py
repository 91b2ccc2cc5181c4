"""The simulated bureaus' and teams' traffic, and the books kept on it."""
