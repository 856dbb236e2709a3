"""The offline Fashion-MNIST experiment: DM/MTT distillation, DSA, students, the evaluation protocol and
the embedded prior's training."""
