# The demo model and its training on the synthetic corpus, sourced by run.sh and local/ab_heads.sh so that every
# experiment on the synthetic corpus trains the same model on the same data with the same updates.
#
# The demo model: 2.7 M parameters, sized for a 2-core CPU.
demo_model_options=(
  --num-encoder-layers 1,1,1,1,1 --feedforward-dims 256,256,256,256,256 --nhead 4,4,4,4,4
  --encoder-dims 128,128,128,128,128 --attention-dims 64,64,64,64,64 --encoder-unmasked-dims 128,128,128,128,128
  --decoder-dim 128 --joiner-dim 128
)
# The main job's heads: the transducer with a CTC head beside it (--ctc-loss-scale 0.2, icefall's default): the
# CTC loss helps the transducer (greedy WER 10.90 / 30.98 against 11.12-11.90 / 31.64-34.16 alone, docs/BENCHMARKS.md,
# "Model heads"). Kept apart from the model options so that local/ab_heads.sh can train the transducer alone.
demo_head_options=(--use-ctc 1)
demo_num_epochs=2
# Two processes of one thread each (DDP over gloo), 20 s of audio each per batch: 1.45x the throughput of one
# process with two threads at the same 40 s per update (docs/BENCHMARKS.md). --am-scale 0.1 (the encoder-only
# term of the simple loss) makes the encoder learn the tokens and their timing sooner: 11.6 / 33.1 greedy WER
# against 17.2 / 38.9 without it, same training otherwise.
demo_train_options=(
  --world-size 2 --num-threads 1 --am-scale 0.1
  --num-epochs $demo_num_epochs --max-duration 20 --full-libri 0 --enable-musan 0 --enable-spec-aug 0
  --model-warmup-batches 300 --warm-step 300 --lr-batches 2000 --lr-epochs 2
  --valid-interval 500 --save-every-n 500 --average-period 50 --log-interval 50 --num-workers 1
)
# The attention decoder scaled to the demo encoder (icefall's defaults, 6 x 512, are 20 times its size).
demo_attention_decoder_options=(
  --attention-decoder-num-layers 2 --attention-decoder-dim 128 --attention-decoder-attention-dim 128
  --attention-decoder-num-heads 4 --attention-decoder-feedforward-dim 512
)
