"""Graph passes: each a pure ``Graph -> Graph`` function in a module of its own."""
