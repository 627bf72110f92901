"""The file batch: inputs, output names, shards and conflicts (`plan`), the pipeline that reads,
upscales and writes files with overlap (`pipeline`), and its counts (`tally`).
"""
