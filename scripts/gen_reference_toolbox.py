#!/usr/bin/python3
"""Writes tests/data/toolbox_reference.txt and tests/data/toolbox_report_*.txt: scikit-learn 1.2
reference values for sorix's toolbox (metrics, preprocessing, model selection, clustering), read by
tests/toolbox/*.cpp (scikit-learn is not needed at test time).
Run: /usr/bin/python3 scripts/gen_reference_toolbox.py

Format of toolbox_reference.txt, one array per line:  <key> <dtype> <ndim> <dim0> ... <values...>
(float64 as %.17g, int64 as %d). The inputs of every case are written too, so the C++ tests
read them rather than regenerate them. Text reports go to toolbox_report_<case>.txt verbatim.
"""
import os
import warnings

import numpy as np
import sklearn
from sklearn import cluster, metrics, model_selection, preprocessing

warnings.filterwarnings("ignore")  # zero_division="warn" cases warn by design
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")
lines = [f"# scikit-learn {sklearn.__version__}, numpy {np.__version__}"]


def put(key, a):
    a = np.asarray(a)
    if a.dtype.kind in "iub":
        dt, vals = "int64", ["%d" % v for v in a.reshape(-1)]
    else:
        dt, vals = "float64", ["%.17g" % v for v in a.astype(np.float64).reshape(-1)]
    lines.append(" ".join([key, dt, str(a.ndim)] + [str(d) for d in a.shape] + vals))


def report(name, text):
    with open(os.path.join(DATA, f"toolbox_report_{name}.txt"), "w") as f:
        f.write(text)


rs = np.random.RandomState(1234)

# ---- regression metrics -----------------------------------------------------------------------
reg = {
    "reg1": (rs.normal(3.0, 2.0, 50), None),
    "reg2": (rs.normal(0.0, 1.0, (30, 3)), None),
}
reg["reg1"] = (reg["reg1"][0], reg["reg1"][0] + rs.normal(0, 0.5, 50))
reg["reg2"] = (reg["reg2"][0], reg["reg2"][0] * 0.8 + rs.normal(0, 0.3, (30, 3)))
y0 = rs.normal(0, 1, 20)
y0[[3, 7]] = 0.0  # MAPE divides by max(|y|, eps)
reg["reg_zero"] = (y0, y0 + rs.normal(0, 0.1, 20))
yc = np.full((12, 2), 2.5)
pc = yc.copy()
pc[:, 1] += rs.normal(0, 0.1, 12)  # constant target: r2 is 1 for output 0 (exact), 0 for output 1
reg["reg_const"] = (yc, pc)
for name, (y, p) in reg.items():
    put(f"{name}.y", y)
    put(f"{name}.p", p)
    put(f"{name}.mse", metrics.mean_squared_error(y, p))
    put(f"{name}.rmse", metrics.mean_squared_error(y, p, squared=False))
    put(f"{name}.mae", metrics.mean_absolute_error(y, p))
    put(f"{name}.mape", metrics.mean_absolute_percentage_error(y, p))
    put(f"{name}.r2", metrics.r2_score(y, p))

# ---- classification metrics ---------------------------------------------------------------------
yt = rs.choice([0, 1, 2, 5], size=60, p=[0.4, 0.3, 0.2, 0.1])
yp = np.where(rs.uniform(size=60) < 0.65, yt, rs.choice([0, 1, 2, 7], size=60))  # 7: predicted only
yb_t = rs.randint(0, 2, 40)
yb_p = np.where(rs.uniform(size=40) < 0.7, yb_t, 1 - yb_t)
ys_t = np.array([-1, 1, 1, -1, 1, 1, -1, 1])
ys_p = np.array([1, 1, -1, -1, 1, 1, 1, 1])
yn_t = np.array([0, 0, 1, 1, 2, 2])  # label 2 never predicted; label 3 never true
yn_p = np.array([0, 1, 1, 1, 3, 3])
cls = {"multi": (yt, yp), "bin": (yb_t, yb_p), "signed": (ys_t, ys_p), "nopred": (yn_t, yn_p)}
ZD = {"warn": "warn", "0": 0, "1": 1}
for name, (t, p) in cls.items():
    put(f"{name}.y_true", t)
    put(f"{name}.y_pred", p)
    put(f"{name}.accuracy", metrics.accuracy_score(t, p))
    put(f"{name}.cm", metrics.confusion_matrix(t, p))
    for norm in ["true", "pred", "all"]:
        put(f"{name}.cm_{norm}", metrics.confusion_matrix(t, p, normalize=norm))
    avgs = ["micro", "macro", "weighted", None]
    if len(np.unique(np.concatenate([t, p]))) <= 2:
        avgs.append("binary")
    for avg in avgs:
        for zk, zv in ZD.items():
            kw = dict(average=avg, zero_division=zv)
            if avg == "binary":
                kw["pos_label"] = -1 if name == "signed" else 1
            an = avg or "none"
            put(f"{name}.precision.{an}.{zk}", metrics.precision_score(t, p, **kw))
            put(f"{name}.recall.{an}.{zk}", metrics.recall_score(t, p, **kw))
            put(f"{name}.f1.{an}.{zk}", metrics.f1_score(t, p, **kw))
# Explicit labels: a subset (micro avg instead of accuracy in the report), and one absent label.
put("multi.cm_labels", metrics.confusion_matrix(yt, yp, labels=[5, 0, 2]))
put("multi.f1.labels.macro", metrics.f1_score(yt, yp, labels=[5, 0, 2, 9], average="macro", zero_division=0))
put("multi.f1.labels.none", metrics.f1_score(yt, yp, labels=[5, 0, 2, 9], average=None, zero_division=0))
report("multi", metrics.classification_report(yt, yp))
report("multi_digits4", metrics.classification_report(yt, yp, digits=4, zero_division=1))
report("multi_labels", metrics.classification_report(yt, yp, labels=[0, 1, 2],
                                                     target_names=["zero", "one", "a longer name"]))
report("bin", metrics.classification_report(yb_t, yb_p))

# find_optimal_threshold: the grid k / 200 and binary F1 (zero_division 0), first maximum.
ythr = rs.randint(0, 2, 300)
sthr = np.clip(np.where(ythr == 1, rs.normal(0.62, 0.2, 300), rs.normal(0.38, 0.2, 300)), 0, 1)
put("thr.y_true", ythr)
put("thr.y_score", sthr)
best_t, best_f = None, -1.0
for k in range(1, 200):
    th = k / 200
    f = metrics.f1_score(ythr, (sthr >= th).astype(int), zero_division=0)
    if f > best_f:
        best_t, best_f = th, f
put("thr.threshold", best_t)
put("thr.f1", best_f)
best_t, best_f = None, -1.0
for k in range(1, 50):
    th = k / 50
    f = metrics.accuracy_score(ythr, (sthr >= th).astype(int))
    if f > best_f:
        best_t, best_f = th, f
put("thr.acc_threshold", best_t)
put("thr.acc", best_f)

# ---- preprocessing ------------------------------------------------------------------------------
Xp = rs.normal(0, 1, (41, 3)) * np.array([1.0, 10.0, 0.01]) + np.array([5.0, -3.0, 0.5])
Xp[3, 0], Xp[17, 1] = 40.0, -90.0  # outliers
Xp_const = np.hstack([Xp[:, :2], np.full((41, 1), 7.25)])
Xp_even = Xp[:40]
Xq = rs.normal(0, 2, (9, 3))  # unseen data
for name, X in {"pp": Xp, "pp_const": Xp_const, "pp_even": Xp_even}.items():
    put(f"{name}.x", X)
    cases = {
        "minmax": preprocessing.MinMaxScaler(),
        "minmax_range": preprocessing.MinMaxScaler(feature_range=(-1, 2)),
        "minmax_clip": preprocessing.MinMaxScaler(feature_range=(-1, 2), clip=True),
        "std": preprocessing.StandardScaler(),
        "std_nomean": preprocessing.StandardScaler(with_mean=False),
        "std_nostd": preprocessing.StandardScaler(with_std=False),
        "robust": preprocessing.RobustScaler(),
        "robust_range": preprocessing.RobustScaler(quantile_range=(10.0, 90.0)),
        "robust_nocenter": preprocessing.RobustScaler(with_centering=False),
    }
    for cname, sc in cases.items():
        key = f"{name}.{cname}"
        put(f"{key}.fit_transform", sc.fit_transform(X))
        put(f"{key}.transform_new", sc.transform(Xq))
        put(f"{key}.inverse_new", sc.inverse_transform(Xq))
        for attr in ["data_min_", "data_max_", "data_range_", "scale_", "min_", "mean_", "var_", "center_"]:
            v = getattr(sc, attr, None)
            if v is not None:
                put(f"{key}.{attr}", v)
put("pp.x_new", Xq)
put("pp.p30", np.percentile(Xp, 30, axis=0))
put("pp.p62_5", np.percentile(Xp_even, 62.5, axis=0))
put("pp.median_even", np.median(Xp_even, axis=0))

codes = np.stack([rs.choice([3, -1, 10, 7], 25), rs.choice([0, 1], 25), rs.choice([100, 5, 42], 25)], axis=1)
put("ohe.x", codes)
enc = preprocessing.OneHotEncoder(handle_unknown="ignore", sparse_output=False)
put("ohe.fit_transform", enc.fit_transform(codes))
new_codes = np.array([[3, 1, 5], [8, 0, 100], [-1, 2, 42]])  # 8 and 2 unseen
put("ohe.x_new", new_codes)
put("ohe.transform_new", enc.transform(new_codes))
for j, c in enumerate(enc.categories_):
    put(f"ohe.categories.{j}", c)
strs = np.array([["red", "b"], ["green", "a"], ["blue", "b"], ["red", "c"], ["Zed", "a"]], dtype=object)
senc = preprocessing.OneHotEncoder(sparse_output=False).fit(strs)
put("ohe_str.fit_transform", senc.transform(strs))

Xc = np.hstack([Xp[:12, :1], codes[:12, 1:2].astype(float), Xp[:12, 1:3]])
put("ct.x", Xc)
ct = __import__("sklearn.compose", fromlist=["ColumnTransformer"]).ColumnTransformer(
    [("num", preprocessing.StandardScaler(), [0, 2]), ("cat", preprocessing.OneHotEncoder(sparse_output=False), [1])],
    remainder="passthrough")
put("ct.fit_transform", ct.fit_transform(Xc))
ct_drop = __import__("sklearn.compose", fromlist=["ColumnTransformer"]).ColumnTransformer(
    [("rob", preprocessing.RobustScaler(), [3]), ("mm", preprocessing.MinMaxScaler(), [0, 3])])
put("ct_drop.fit_transform", ct_drop.fit_transform(Xc))

# ---- model selection ----------------------------------------------------------------------------
size_cases = {  # name: (n, kwargs)
    "default": (10, {}), "frac": (37, dict(test_size=0.33)), "count": (37, dict(test_size=7)),
    "train_frac": (37, dict(train_size=0.6)), "both_frac": (37, dict(train_size=0.5, test_size=0.3)),
    "both_count": (37, dict(train_size=11, test_size=5)), "train_count": (9, dict(train_size=2)),
}
for name, (n, kw) in size_cases.items():
    tr, te = model_selection.train_test_split(np.arange(n), shuffle=False, **kw)
    put(f"tts.{name}.train", tr)
    put(f"tts.{name}.test", te)
ys = np.repeat([4, 0, 9], [47, 31, 22])
put("tts.strat.y", ys)
tr, te = model_selection.train_test_split(ys, test_size=0.3, stratify=ys, random_state=0)
put("tts.strat.train_counts", [np.sum(tr == c) for c in [0, 4, 9]])
put("tts.strat.test_counts", [np.sum(te == c) for c in [0, 4, 9]])
tss_cases = {  # name: (n, kwargs)
    "plain": (20, dict(n_splits=5)), "gap": (23, dict(n_splits=3, test_size=4, gap=2)),
    "sliding": (30, dict(n_splits=4, max_train_size=8)),
    "sliding_gap": (30, dict(n_splits=4, max_train_size=8, gap=1, test_size=3)),
}
for name, (n, kw) in tss_cases.items():
    for k, (tr, te) in enumerate(model_selection.TimeSeriesSplit(**kw).split(np.zeros(n))):
        put(f"tss.{name}.{k}.train", tr)
        put(f"tss.{name}.{k}.test", te)

# ---- clustering -------------------------------------------------------------------------------
from sklearn.datasets import make_blobs  # noqa: E402

Xk, _ = make_blobs(n_samples=150, centers=4, n_features=3, cluster_std=1.5, random_state=7)
Xk_new = rs.normal(0, 6, (10, 3))
put("km.x", Xk)
put("km.x_new", Xk_new)
far = np.vstack([Xk[[0, 1, 2]], [[100.0, 100.0, 100.0]]])  # an empty cluster to relocate
km_cases = {  # name: (init, kwargs)
    "given": (Xk[[0, 50, 100, 3]], {}),
    "empty": (far, {}),
    "max_iter": (Xk[[5, 6, 7, 8]], dict(max_iter=2)),
    "tol": (Xk[[5, 6, 7, 8]], dict(tol=0.5)),
}
for name, (init, kw) in km_cases.items():
    for dt in ["float64", "float32"]:
        X = Xk.astype(dt)
        km = cluster.KMeans(n_clusters=4, init=init.astype(dt), n_init=1, **kw).fit(X)
        key = f"km.{name}.{dt}"
        put(f"{key}.init", init)
        put(f"{key}.centers", km.cluster_centers_)
        put(f"{key}.labels", km.labels_)
        put(f"{key}.inertia", km.inertia_)
        put(f"{key}.n_iter", km.n_iter_)
        put(f"{key}.predict_new", km.predict(Xk_new.astype(dt)))
        put(f"{key}.transform_new", km.transform(Xk_new.astype(dt)))
        put(f"{key}.score_new", -km.score(Xk_new.astype(dt)))
Xs, _ = make_blobs(n_samples=300, centers=[[0, 0], [8, 8], [-8, 6]], cluster_std=0.7, random_state=3)
put("km.sep.x", Xs)
kms = cluster.KMeans(n_clusters=3, n_init=10, random_state=0).fit(Xs)
put("km.sep.inertia", kms.inertia_)
put("km.sep.centers", kms.cluster_centers_[np.argsort(kms.cluster_centers_[:, 0])])

with open(os.path.join(DATA, "toolbox_reference.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")
print(f"wrote {len(lines) - 1} arrays")
