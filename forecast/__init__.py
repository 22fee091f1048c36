"""forecast: daily stock-price forecasts with recurrent networks, always beside naive baselines.

Importing the package is cheap: TensorFlow, Keras, matplotlib and scikit-learn
are imported only by the code paths that need them.
"""

__version__ = "0.1.0"
