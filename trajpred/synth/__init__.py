"""The synthetic world: people walking on a plaza seen by a fixed camera, with exact ground truth.

world.py holds the scene config, the camera and the simulation (`simulate`); crowd.py the walkers'
motion model; render.py draws the frames and writes the video, ground-truth files and a YOLO
dataset. Only the demo, `trajpred synth` and the training scripts use it.
"""
