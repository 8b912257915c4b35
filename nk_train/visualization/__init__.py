"""Pictures a pose researcher looks at, one module per picture (matplotlib, Agg canvas):

* ``gallery``: pseudo-label gallery (Teacher A accepted / rejected / lowest KPS);
* ``gating_plots``: the gate's conf vs KPS plane coloured by OKS, OKS distributions;
* ``training_curves``: loss terms, Teacher A / B counts, gate means, lr, validation AP from
  ``scalars.json``, one run or several overlaid;
* ``cache_preview``: cached depth / normal maps beside their crop, keypoints on all three;
* ``results_figure``: AP per method with its interval.

``drawing`` holds what they share; ``tools/visualize.py`` is the command line. Not imported by
``nk_train`` itself (training never needs matplotlib).
"""
