"""A real simulator on the CPU (Meta-World on MuJoCo): seeded tasks, scripted experts, demonstration datasets
and closed-loop execution. Needs the ``sim`` extra."""
