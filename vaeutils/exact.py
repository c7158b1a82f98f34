"""A latent-variable model whose every quantity is known in closed form: linear-Gaussian (unit 03).

    p(z) = N(0, I_d),    p(x | z) = N(W z + b, σ² I_D),    so    p(x) = N(b, W Wᵀ + σ² I_D)

and the true posterior p(z | x) is Gaussian too. For a diagonal Gaussian
q(z) = N(m, diag exp(logvar)) the ELBO, KL(q ‖ p(z | x)) and log p(x) are all closed forms, computed
here in float64 by three separate routes, so that unit 03 can check
log p(x) = ELBO + KL(q ‖ p(z | x)) to rounding error. It is also the linear VAE of Lucas et al.
(2019), the model in which posterior collapse can be worked out by hand.
"""

from __future__ import annotations

import math

import torch

from . import checks
from .losses import kl_per_dim

_LOG_2PI = math.log(2 * math.pi)


def _vector(name: str, value, size: int) -> torch.Tensor:
    checks.tensor(name, value)
    if value.shape[-1:] != (size,) or value.dim() > 2:
        raise ValueError(f"{name} must be shaped ({size},) or (batch, {size}), got "
                         f"{tuple(value.shape)}")
    return value.double()


class LinearGaussian:
    """p(z) = N(0, I_d), p(x|z) = N(W z + b, σ² I_D). ``W`` (D, d), ``b`` (D,), ``sigma`` > 0;
    float64 inside.

    Methods take one x shaped (D,) or a batch (B, D) and return a number per x (shape () or (B,)),
    in nats.
    """

    def __init__(self, W: torch.Tensor, b: torch.Tensor, sigma: float):
        checks.tensor("W", W, dim=2, nonempty=True)
        self.W = W.double()
        self.D, self.d = self.W.shape
        self.b = _vector("b", b, self.D)
        if self.b.dim() != 1:
            raise ValueError(f"b must be shaped ({self.D},), got {tuple(b.shape)}")
        self.sigma = checks.positive("sigma", sigma, hint="the decoder's noise standard deviation")

    @classmethod
    def random(cls, D: int = 5, d: int = 2, sigma: float = 0.5, seed: int = 0) -> LinearGaussian:
        """A model with standard-normal W and b drawn from ``seed``."""
        D, d = checks.integer("D", D, low=1), checks.integer("d", d, low=1)
        g = torch.Generator().manual_seed(checks.integer("seed", seed, low=0))
        return cls(torch.randn(D, d, generator=g, dtype=torch.float64),
                   torch.randn(D, generator=g, dtype=torch.float64), sigma)

    def sample(self, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` draws (x, z) from the model: z ~ p(z), then x ~ p(x|z)."""
        n = checks.integer("n", n, low=1)
        g = torch.Generator().manual_seed(checks.integer("seed", seed, low=0))
        z = torch.randn(n, self.d, generator=g, dtype=torch.float64)
        noise = torch.randn(n, self.D, generator=g, dtype=torch.float64)
        return z @ self.W.T + self.b + self.sigma * noise, z

    def log_evidence(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) = log N(x; b, W Wᵀ + σ² I), by a Cholesky factor of the D × D covariance."""
        x = _vector("x", x, self.D)
        cov = self.W @ self.W.T + self.sigma**2 * torch.eye(self.D, dtype=torch.float64)
        chol = torch.linalg.cholesky(cov)
        r = torch.linalg.solve_triangular(chol, (x - self.b).reshape(-1, self.D).T, upper=False)
        out = -0.5 * (r.square().sum(0) + 2 * chol.diagonal().log().sum() + self.D * _LOG_2PI)
        return out.reshape(x.shape[:-1])

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The true posterior p(z|x) = N(mean, cov): precision Λ = I + WᵀW/σ²,
        mean = Λ⁻¹ Wᵀ(x − b)/σ²."""
        x = _vector("x", x, self.D)
        cov = torch.linalg.inv(self.precision())
        return (x - self.b) @ self.W @ cov / self.sigma**2, cov

    def precision(self) -> torch.Tensor:
        """Λ = I + WᵀW/σ², the precision of p(z|x) (the same for every x)."""
        return torch.eye(self.d, dtype=torch.float64) + self.W.T @ self.W / self.sigma**2

    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x, z) = log p(z) + log p(x|z) for codes z shaped (..., d), broadcast against x."""
        x, z = _vector("x", x, self.D), z.double()
        if z.shape[-1] != self.d:
            raise ValueError(f"z must end in the latent size {self.d}, got shape {tuple(z.shape)}")
        resid = x - z @ self.W.T - self.b
        log_norm = self.D * (_LOG_2PI + 2 * math.log(self.sigma))
        log_lik = -0.5 * (resid.square().sum(-1) / self.sigma**2 + log_norm)
        return log_lik - 0.5 * (z.square().sum(-1) + self.d * _LOG_2PI)

    def _q(self, m, logvar):
        m, logvar = _vector("m", m, self.d), _vector("logvar", logvar, self.d)
        checks.same_shape("m", m, "logvar", logvar)
        return m, logvar

    def expected_log_likelihood(self, x, m, logvar) -> torch.Tensor:
        """E_q[log p(x|z)] for q = N(m, diag exp(logvar)): the squared error of the mean plus the
        spread of z."""
        x = _vector("x", x, self.D)
        m, logvar = self._q(m, logvar)
        err = (x - m @ self.W.T - self.b).square().sum(-1)
        spread = (logvar.exp() * self.W.square().sum(0)).sum(-1)
        log_norm = self.D * (_LOG_2PI + 2 * math.log(self.sigma))
        return -0.5 * ((err + spread) / self.sigma**2 + log_norm)

    def elbo(self, x, m, logvar) -> torch.Tensor:
        """ELBO = E_q[log p(x|z)] − KL(q ‖ N(0, I)), in closed form."""
        m, logvar = self._q(m, logvar)
        return self.expected_log_likelihood(x, m, logvar) - kl_per_dim(m, logvar).sum(-1)

    def kl_to_posterior(self, x, m, logvar) -> torch.Tensor:
        """KL(q ‖ p(z|x)) between the diagonal q and the full-covariance Gaussian posterior."""
        m, logvar = self._q(m, logvar)
        mean, _ = self.posterior(x)
        lam = self.precision()
        diff = mean - m
        quad = ((diff @ lam) * diff).sum(-1)
        trace = (lam.diagonal() * logvar.exp()).sum(-1)
        return 0.5 * (trace + quad - self.d - torch.logdet(lam) - logvar.sum(-1))

    def best_diagonal(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        """The diagonal Gaussian q that maximises the ELBO: the posterior mean and variances 1/Λ_jj
        (not the posterior's own marginal variances, which are larger when the latents are
        correlated)."""
        mean, _ = self.posterior(x)
        return mean, (-self.precision().diagonal().log()).expand_as(mean).clone()
