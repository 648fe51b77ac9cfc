"""A user's loss module, as the tests that load custom losses from a config write it to disk
(``my_losses.py`` beside the config): L(w) = ½k(w − c)², optimum c, curvature k."""

QUAD = '''
def quad(w, c=3.0, k=2.0):
    return 0.5 * k * (w - c) ** 2
'''
