"""See it: the explorer page, and the values and gradients drawn on the graphs.

    prog.render(outdir, feeds=...)         every stage with values (:mod:`.annotate`)
    prog.explore("page.html", train=20)    one self-contained HTML page (:mod:`.page`)

These are views: they take a compiled program (using only its attributes and methods),
the drawing layer (:mod:`graphc.render`, a leaf that only draws what it is given) and
the reference interpreter (:func:`gc.evaluate`); they never run the pipeline.
"""
