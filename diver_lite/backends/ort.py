"""ONNX Runtime backend: the exported DiT and VAE behind the same calls as the torch backend, on numpy arrays.
Imports neither torch nor diffusers, so npz and image-folder sets recover with numpy + onnxruntime alone."""

import json
import os
from pathlib import Path

import numpy as np

from diver_lite.errors import ConfigError, ModelError
from diver_lite.core.guidance import cfg_denoise
from diver_lite.backends.ort_sessions import SessionPool, SessionSettings
from diver_lite.backends.providers import named_providers, precision_advice, providers_for
from diver_lite.export.manifest import FORMAT, MANIFEST_KEYS, STEP_GRAPHS, VAE_GRAPHS   # the exporter's contract


def read_manifest(folder: Path) -> dict:
    path = folder / "manifest.json"
    if not path.is_file():
        raise ModelError(f"{folder} has no manifest.json", "point --onnx at a folder written by diver-lite export")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ModelError(f"{path} is not valid JSON: {e}", "re-run diver-lite export")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ModelError(f"{path} has format {found!r}, expected {FORMAT}", "re-export with this version of diver-lite")
    absent = [k for k, kind in MANIFEST_KEYS.items() if not isinstance(manifest.get(k), kind)
              or isinstance(manifest.get(k), bool) and kind is not bool]
    if absent:
        raise ModelError(f"{path} lacks or mistypes {', '.join(absent)}", "re-run diver-lite export")
    sched = manifest["schedule"]
    if not (sched.get("beta_schedule", "linear") == "linear" and isinstance(sched.get("num_train_timesteps"), int)
            and all(isinstance(sched.get(k), (int, float)) for k in ("beta_start", "beta_end"))):
        raise ModelError(f"{path}: schedule {sched} is not DiT's linear one", "re-run diver-lite export")
    graphs = manifest["graphs"]
    bad = [g for g, v in graphs.items() if not isinstance(v, dict) or not isinstance(v.get("file"), str)
           or Path(v["file"]).name != v["file"]]
    if bad:
        raise ModelError(f"{path}: graph entries {bad} are not {{'file': NAME, ...}}", "re-run diver-lite export")
    missing = [g for g in ("dit", *VAE_GRAPHS) if g not in graphs
               or not (folder / graphs[g]["file"]).is_file()]
    if missing:
        raise ModelError(f"{folder} lacks the graphs {', '.join(missing)}", "re-run diver-lite export")
    return manifest


class OrtBackend:
    name = "onnxruntime"
    runtime = None                # no torch memory runtime: the ONNX folder's precision is fixed at export
    guided_step = None            # set to the exported step when graph == "guided_step"

    def __init__(self, folder, device: str = "auto", cfg_channels: int = 3, graph: str = "dit",
                 provider: str | None = None, sessions: str = "lean", settings: SessionSettings | None = None):
        """`graph`: "dit" (the sampler calls the DiT through the shared CFG code) or "guided_step" (one whole
        DIVER DDIM step per call: the exported guided denoiser is what runs). `provider`: execution providers by
        name ("tensorrt,cuda", "directml", "coreml", "openvino", ...) instead of the device's. `sessions`: "lean"
        holds one graph at a time (ort_sessions.py), "resident" all of them."""
        folder = Path(folder)
        if not folder.is_dir():
            raise ModelError(f"ONNX folder {folder} does not exist", "run diver-lite export first")
        self.manifest = m = read_manifest(folder)
        if graph not in STEP_GRAPHS:
            raise ConfigError(f"unknown ONNX graph {graph!r}", f"use {' or '.join(STEP_GRAPHS)}")
        if graph == "guided_step":
            if "guided_step" not in m["graphs"] or not (folder / m["graphs"]["guided_step"]["file"]).is_file():
                raise ModelError(f"{folder} has no guided_step graph", "export it: diver-lite export --graphs "
                                 "dit,guided_step,vae_encoder,vae_decoder")
            if m.get("cfg_channels") != cfg_channels:
                raise ConfigError(f"guided_step.onnx was exported with CFG on {m.get('cfg_channels')} channels, "
                                  f"the run asks for {cfg_channels}", f"use --cfg-channels {m.get('cfg_channels')} "
                                  "or re-export with the run's")
            self.guided_step = self._guided_step
        self.graph = graph
        providers = named_providers(provider) if provider else providers_for(device)
        threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or None
        settings = settings or SessionSettings(threads=threads)
        self.sessions = SessionPool(folder, m["graphs"], (VAE_GRAPHS[0], graph, VAE_GRAPHS[1]), providers, sessions,
                                    settings)
        expected = {"dit": [m["latent_channels"], m["latent_size"], m["latent_size"]],
                    "vae_encoder": [3, m["image_size"], m["image_size"]],
                    "guided_step": [m["latent_channels"], m["latent_size"], m["latent_size"]]}
        for name, shape in self.sessions.shapes.items():
            if name in expected and shape != expected[name]:
                raise ModelError(f"{name}.onnx takes {shape}, but manifest.json describes {expected[name]}: the "
                                 "manifest belongs to another model", "re-run diver-lite export into this folder")
        self.image_size, self.latent_channels = m["image_size"], m["latent_channels"]
        self.latent_size, self.scaling_factor = m["latent_size"], m["scaling_factor"]
        self.num_classes, self.null_class = m["num_classes"], m["null_class"]
        self.schedule, self.cfg_channels = m["schedule"], cfg_channels
        self.source = f"onnx:{m['source_hash']}:{m['precision']}"
        advice = precision_advice(m["precision"], self.provider())
        self.warnings = [advice] if advice else []   # the run logs them and the report keeps them

    def check_config(self, config) -> None:
        """guided_step.onnx has the sigma scaling and guidance target it was exported with."""
        if self.graph != "guided_step":
            return
        if bool(self.manifest.get("sigma_scaling", True)) != config.sigma_scaling:
            raise ConfigError("guided_step.onnx was exported with sigma scaling "
                              f"{'on' if self.manifest.get('sigma_scaling', True) else 'off'}, the run asks otherwise",
                              "use the export's setting or --onnx-graph dit")
        target = self.manifest.get("guidance_target", "x0")    # manifests from before the option: x0
        if target != config.guidance_target:
            raise ConfigError(f"guided_step.onnx was exported with --guidance-target {target}, the run asks "
                              f"{config.guidance_target}", f"pass --guidance-target {target}, export again with "
                              f"--guidance-target {config.guidance_target}, or use --onnx-graph dit")

    def _guided_step(self, x, timestep: int, labels, z_inh, p):
        """guided_step.onnx: (x_{i-1}, x0_pred). Its sigma scaling was fixed at export (manifest)."""
        params = np.array([getattr(p, name) for name in self.manifest["step_params"]], dtype=np.float32)
        x_prev, x0_pred = self.sessions["guided_step"](x.astype(np.float32), np.array([timestep], np.int64),
                                                       labels.astype(np.int64), z_inh.astype(np.float32), params)
        return x_prev, x0_pred

    def _run_dit(self, x, timestep: int, labels):
        t = np.full((x.shape[0],), timestep, dtype=np.int64)
        return self.sessions["dit"](x.astype(np.float32), t, labels.astype(np.int64))[0]

    def denoiser(self, x, timestep: int, class_labels, cfg_scale: float):
        null = np.full((x.shape[0],), self.null_class, dtype=np.int64)
        return cfg_denoise(self._run_dit, np.concatenate, x, timestep, class_labels, null, cfg_scale,
                           self.cfg_channels)

    def asarray(self, x) -> np.ndarray:
        return np.asarray(x)

    def numpy(self, x) -> np.ndarray:
        return np.asarray(x, dtype=np.float32)

    def encode(self, x: np.ndarray):
        mean, std = self.sessions["vae_encoder"](x.astype(np.float32))
        return mean, std

    def decode(self, z) -> np.ndarray:
        return self.sessions["vae_decoder"](np.asarray(z, dtype=np.float32))[0]

    def synchronize(self) -> None:
        pass

    def provider(self) -> str:
        return self.sessions.provider

    def device_name(self) -> str:
        return f"onnxruntime {self.provider()} ({self.manifest['precision']} {self.graph})"

    def describe(self) -> dict:
        m = self.manifest
        return {"source": self.source, "exported_from": m["source_model"], "image_size": m["image_size"],
                "latent": [m["latent_channels"], m["latent_size"], m["latent_size"]],
                "num_classes": m["num_classes"], "precision": m["precision"], "opset": m["opset"],
                "timestep_embedding": m.get("timestep_embedding"), "graph": self.graph,
                "sessions": self.sessions.mode}

    def peak_memory(self) -> dict:
        return {}
