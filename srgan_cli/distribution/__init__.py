"""Model distribution: how models are named, stored and shipped. The registry of named models and
their shipped copies (`registry`), the Hugging Face Hub (`hub`), loading any model file into a
`Model` (`loading`), our weights files' metadata (`modelfile`) and safetensors checks
(`tensorfile`), community model files read without unpickling code (`community_files`), other
projects' SRResNet layouts (`layouts`, `convert`), the realism blend (`realism`) and ONNX export
(`onnx_export`).
"""
