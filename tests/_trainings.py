"""A test helper: which plans each engine trains."""

from skfocal._engines import SkorchEngine, StackedEngine


def count_trainings(monkeypatch):
    """Record the plans every engine trains from now on: ``{"single": [...], "stacked": [...]}``,
    the number of plans of each call (a single fit trains one plan a call)."""
    seen = {"single": [], "stacked": []}
    single_fit, stacked_fit = SkorchEngine.fit, StackedEngine.fit

    def single(self, plans, X):
        seen["single"].append(len(plans))
        return single_fit(self, plans, X)

    def stacked(self, plans, X, **kwargs):
        seen["stacked"].append(len(plans))
        return stacked_fit(self, plans, X, **kwargs)

    monkeypatch.setattr(SkorchEngine, "fit", single)
    monkeypatch.setattr(StackedEngine, "fit", stacked)
    return seen
