"""The quickstart's training script: a logistic regression on the iris data set (shipped with scikit-learn).

Runs under ``kiln run submit`` (metrics logged to the run, ./outputs kept) and directly with an environment's
interpreter (``$(kiln env python myenv) train.py``), where the metrics are printed instead.
"""

import argparse
import os
import pickle

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

try:
    from kiln.run import Run  # Kiln puts this stdlib-only module on a run's path
except ImportError:  # run directly with the environment's interpreter, outside a Kiln run
    Run = None

parser = argparse.ArgumentParser()
parser.add_argument("--alpha", type=float, default=1.0, help="regularization strength (C = 1 / alpha)")
args = parser.parse_args()

X, y = load_iris(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
model = LogisticRegression(C=1.0 / args.alpha, max_iter=1000).fit(X_train, y_train)
accuracy = float(model.score(X_test, y_test))
print(f"alpha {args.alpha}: accuracy {accuracy:.3f}")
if Run is not None:
    run = Run.get_context()
    run.log("alpha", args.alpha)
    run.log("accuracy", accuracy)

os.makedirs("outputs", exist_ok=True)
with open("outputs/model.pkl", "wb") as f:
    pickle.dump(model, f)
print("saved outputs/model.pkl")
