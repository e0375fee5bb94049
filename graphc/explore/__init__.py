"""See it: the explorer page, and the values and gradients drawn on the graphs.

    gc.render(graph, path, feeds=...)      a drawing with values (:mod:`.drawing`)
    prog.render(outdir, feeds=...)         every stage with values (:mod:`.annotate`)
    prog.explore("page.html", train=20)    one self-contained HTML page (:mod:`.page`)

The drawing layer (:mod:`graphc.render`) is a leaf that only draws what it is given;
this package computes what it is given.
"""
