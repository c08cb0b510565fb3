"""The demo's training script: a random forest on the iris data set (shipped with scikit-learn)."""

import argparse
import os
import pickle

from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from kiln.run import Run  # Kiln puts this stdlib-only module on the script's path

parser = argparse.ArgumentParser()
parser.add_argument("--n-estimators", type=int, default=50)
args = parser.parse_args()

run = Run.get_context()
X, y = load_iris(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
model = RandomForestClassifier(n_estimators=args.n_estimators, random_state=0).fit(X_train, y_train)
accuracy = float(model.score(X_test, y_test))
print(f"trained {args.n_estimators} trees: accuracy {accuracy:.3f} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})")
run.log("n_estimators", args.n_estimators)
run.log("accuracy", accuracy)

os.makedirs("outputs", exist_ok=True)
with open("outputs/model.pkl", "wb") as f:
    pickle.dump(model, f)
print("saved outputs/model.pkl")
