"""The reverse-process samplers, one file each: a `Sampler` (core/sampler_type.py) named `ENTRY`. A sampler is its
update x_i -> x_{i-1} from x0_pred; inheritance, fusion and guidance around it are the same for all
(core/sampler.py)."""


