# Every preloaded library, as a user would touch them.
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import sympy
import scipy.stats
from sklearn.linear_model import LinearRegression

a = np.arange(10**6)
print("numpy sum:", a.sum())
df = pd.DataFrame({"team": ["a", "b", "a", "b"], "score": [3, 4, 5, 6]})
print(df.groupby("team")["score"].mean().to_dict())
x = sympy.Symbol("x")
print("sympy:", sympy.integrate(x**2, (x, 0, 3)))
print("scipy: p =", round(scipy.stats.norm.cdf(1.96), 4))
m = LinearRegression().fit([[0], [1], [2]], [1, 3, 5])
print("sklearn slope:", round(float(m.coef_[0]), 3))
plt.plot(a[:100] ** 0.5)
plt.savefig("plot.png")
print("plot saved in the sandbox's /tmp")
