"""Fine-tune a backbone (AST / Wav2Vec2 / ViT / MERT / CLAP) to predict valence and arousal.

    python train.py --model ast --epochs 30 --demo
    python train.py --model ast --data /path/to/DEAM --checkpoint MIT/ast-finetuned-audioset-10-10-0.4593
    python train.py --model vit --data labels.csv --label_scale 1-9 --from_scratch --bf16

Every transformers TrainingArguments flag passes through (--fp16, --gradient_accumulation_steps,
--seed, --resume_from_checkpoint, --push_to_hub --hub_model_id ID, ...).
"""

from __future__ import annotations

import logging
import os
import sys

from sentio.args import (
    DataArguments,
    EmotionTrainingArguments,
    ModelArguments,
    SearchArguments,
    SyntheticArguments,
    check_train_backbone,
    check_train_flags,
)
from sentio.cli import given_flags, parse_dataclasses, parser_for, run_cli

logger = logging.getLogger("train")


def parse_args() -> tuple[ModelArguments, DataArguments, SyntheticArguments, EmotionTrainingArguments, SearchArguments]:
    parser = parser_for((ModelArguments, DataArguments, SyntheticArguments, EmotionTrainingArguments, SearchArguments),
                        prog="train.py", description="Fine-tune a backbone to predict valence and arousal.")
    model_args, data_args, synthetic_args, training_args, search_args = parse_dataclasses(parser)
    # Defaults that depend on other flags, resolved now that every flag is parsed.
    if not training_args.output_dir_given:
        training_args.output_dir = os.path.join("runs", f"{model_args.model}-demo" if data_args.demo else model_args.model)
    if model_args.probe:
        from sentio.training.setup import apply_probe_defaults

        apply_probe_defaults(model_args, training_args, given_flags(parser))
    if data_args.protocol:
        from sentio.data.protocols import get_protocol
        from sentio.training.setup import apply_protocol_defaults

        apply_protocol_defaults(model_args, get_protocol(data_args.protocol), given_flags(parser))
    check_train_flags(model_args, synthetic_args, training_args, search_args)  # after the defaults they may meet
    return model_args, data_args, synthetic_args, training_args, search_args


def main() -> int:
    model_args, data_args, synthetic_args, training_args, search_args = parse_args()
    # Heavy imports once the arguments are valid: `--help` and flag errors stay fast.
    import transformers
    from transformers import EarlyStoppingCallback, set_seed

    from sentio.features.datasets import EmotionCollator
    from sentio.demo.ceiling import split_ceiling, split_dynamic_ceiling
    from sentio.features.cache import build_feature_dataset
    from sentio.features.records import record_feature_cache
    from sentio.data.protocols import get_protocol, protocol_notes
    from sentio.data.sources import prepare_manifest
    from sentio.errors import DataError
    from sentio.choices import TRAINED_ON_DEMO
    from sentio.training.search import STUDY_FILE
    from sentio.cli import check_run_folder, ensure_writable_dir, missing_folders, note_failed_run
    from sentio.training.augment import Mixup
    from sentio.training.calibrate import calibrate_and_score
    from sentio.training.card import ModelCardInfo, check_hub_ready, write_model_card
    from sentio.training.freeze import finish_training, select_trained
    from sentio.training.probe import INPUT_NAME, EmbeddingCollator, probe_embeddings
    from sentio.training.setup import (
        check_split_sizes,
        resume_checkpoint,
        run_feature_extractor,
        run_targets,
        time_resolved_curves,
        training_datasets,
    )
    from sentio.training.trainer import EmotionTrainer
    from sentio.models.plan import model_plan

    transformers.utils.logging.set_verbosity_warning()
    protocol = get_protocol(data_args.protocol) if data_args.protocol else None
    plan = model_plan(model_args, data_args.demo)
    check_train_backbone(plan, model_args, synthetic_args, training_args)  # before any data work
    space = None
    if search_args.hp_search:  # optuna and the space: checked before any data work
        from sentio.training.search import check_search_flags

        space = check_search_flags(search_args, plan, training_args)
    if training_args.push_to_hub:
        check_hub_ready()  # fail now, not after hours of training
    resume = resume_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    resuming_search = bool(search_args.hp_search) and os.path.exists(os.path.join(training_args.output_dir, STUDY_FILE))
    check_run_folder(training_args.output_dir, training_args.overwrite_output_dir, resume is not None or resuming_search)
    created = missing_folders(training_args.output_dir)
    ensure_writable_dir(training_args.output_dir, "--output_dir")
    set_seed(training_args.seed)

    with note_failed_run(training_args.output_dir, created):
        # Data: a validated manifest (written into the run), then features computed once and cached.
        pass_rows = []  # the rows of a feature pass that ran before the manifest was final

        def decode_pass(rows):
            """Songs are about to be matched by their audio: compute the features now, fingerprinting
            each clip from the same decode (the matching then decodes nothing); the splits come after
            and index these cached rows. Not with --dataset_stats, whose statistics need the splits."""
            if model_args.dataset_stats:
                return None
            first = run_feature_extractor(plan, plan.architecture(), rows)
            build_feature_dataset(rows, first, data_args.cache_dir, num_proc=data_args.preprocessing_num_workers,
                                  fingerprints=True)
            pass_rows.append(rows)
            return first.sampling_rate  # the fingerprints' source rate (MERT: 24 kHz, CLAP: 48 kHz)

        with training_args.main_process_first(desc="manifest"):
            manifest, data_report = prepare_manifest(data_args, training_args.output_dir,
                                                     progress=training_args.process_index == 0,
                                                     decode_pass=decode_pass)
        check_split_sizes(manifest, data_report.split_method)  # before hours of training, not after

        # Model: pretrained checkpoint, or the same architecture from scratch (--demo: compact config).
        model = plan.build()
        scale = protocol.label_scale(data_report.protocol or {}) if protocol is not None else None
        if scale is not None:  # the protocol's label transform (MARBLE: z-scored labels, an unbounded head)
            model.config.label_mean, model.config.label_std = scale
        # what the run was trained on, recorded in config.json: every prediction path says so for the demo
        setattr(model.config, TRAINED_ON_DEMO, bool(data_args.demo))
        trained = select_trained(model, plan.backbone, model_args)  # LoRA, top layers, probe or all
        logger.info("training %s", trained.summary())
        extractor = run_feature_extractor(plan, model.config, manifest, model_args.dataset_stats)
        model.config.input_step_seconds = extractor.params.step_seconds  # places a dynamic model's tokens in time
        curves = time_resolved_curves(training_args.output_dir) if plan.time_resolved else None
        with training_args.main_process_first(desc="features"):
            features, feature_report = build_feature_dataset(
                manifest, extractor, data_args.cache_dir, num_proc=data_args.preprocessing_num_workers, curves=curves,
                max_seconds=protocol.max_seconds if protocol else None, pass_rows=pass_rows[0] if pass_rows else None,
            )
        for failure in feature_report.failed:
            logger.warning("skipped %s: %s", failure.path, failure.reason)
        record_feature_cache(training_args.output_dir, feature_report)
        input_name, collator = extractor.feature_name, EmotionCollator.for_extractor(extractor)
        if plan.probe:  # the frozen encoder runs once over every window; the head trains on its cached output
            with training_args.main_process_first(desc="probe embeddings"):
                features, _ = probe_embeddings(features, feature_report, model, extractor, data_args.cache_dir,
                                               training_args.per_device_eval_batch_size)
            input_name, collator = INPUT_NAME, EmbeddingCollator()
        train_ds, val_ds, test_ds = training_datasets(features, extractor, model_args, input_name,
                                                      run_targets(model.config))
        plain_train = train_ds  # a search wraps it in each trial's own mixup
        synthetic_info = {}
        if synthetic_args.synthetic:  # GAN windows join the training set only; validation and test stay real
            from sentio.gan.synthetic import with_synthetic

            train_ds, synthetic_info = with_synthetic(train_ds, synthetic_args.synthetic, synthetic_args.synthetic_ratio,
                                                      extractor, seed=training_args.seed)
        if model_args.mixup_alpha > 0:  # after --synthetic, so synthetic windows are blended too; never evaluation
            train_ds = Mixup(train_ds, input_name, alpha=model_args.mixup_alpha)
        batch = training_args.per_device_train_batch_size * max(1, training_args.world_size)
        if len(train_ds) < batch:  # training drops a partial batch (CCC is a batch statistic): nothing would train
            raise DataError(f"the train split gives {len(train_ds)} training items, fewer than one batch of {batch}: "
                            "lower --per_device_train_batch_size (or use --train_windows all)")
        logger.info("songs: train %d, validation %d, test %d; windows %d", len(set(train_ds.song_ids)),
                    len(set(val_ds.song_ids)), len(set(test_ds.song_ids)), feature_report.windows)

        callbacks = [EarlyStoppingCallback(model_args.early_stopping_patience)] if model_args.early_stopping_patience else []
        trainer_kwargs = dict(args=training_args, train_dataset=train_ds, eval_dataset=val_ds, data_collator=collator,
                              processing_class=extractor, callbacks=callbacks)
        search_summary = None
        if space is not None:  # the best of N trials becomes the run's model
            from sentio.training.search import HyperparameterSearch

            search = HyperparameterSearch(space, training_args.output_dir, search_args.hp_search, model, plain_train,
                                          input_name, training_args.seed, model_args.mixup_alpha)
            trainer, search_summary = search.run(trainer_kwargs, training_args.metric_for_best_model,
                                                 bool(training_args.greater_is_better))
            model, train_metrics = trainer.model, trainer.search_train_metrics
        else:
            trainer = EmotionTrainer(model=model, **trainer_kwargs)
            train_metrics = trainer.train(resume_from_checkpoint=resume).metrics
            train_metrics["trainable_parameters"] = trained.trainable
            finish_training(trainer, model_args.save_adapter)  # LoRA: adapters merged (optionally saved first)
        trainer.save_model()  # model + preprocessor_config.json, loadable with from_pretrained
        trainer.log_metrics("train", train_metrics)
        trainer.save_metrics("train", train_metrics)
        trainer.save_state()

    # Final numbers: validation, then the test songs (window predictions averaged per song). Early
    # stopping has done its work: it would only warn that the test metrics lack its eval_ key.
    trainer.remove_callback(EarlyStoppingCallback)
    # intervals for every run (split-conformal), then the scores
    results = calibrate_and_score(trainer, val_ds, test_ds, training_args.output_dir)
    if data_args.demo and data_report.sources is not None:
        # the ceiling is the demo corpus' own; these test songs also come from other sources
        logger.info("no demo ceiling: the test songs come from several sources, not the demo corpus alone")
    elif data_args.demo:  # how close to the best any model could do on these test songs
        test_songs = manifest[manifest["split"] == "test"]
        ceiling = split_ceiling(data_args.demo_dir, test_songs)
        if "test_num_frames" in results:  # a dynamic run's test_ccc_* score frames: the 2 Hz ceiling
            results.update({f"test_static_ceiling_ccc_{k}": v for k, v in ceiling.items()})
            dynamic = split_dynamic_ceiling(data_args.demo_dir, test_songs)
            ceiling = {k: dynamic[f"ccc_{k}"] for k in ("valence", "arousal", "mean")}
        results.update({f"test_ceiling_ccc_{k}": v for k, v in ceiling.items()})
        results["test_ccc_mean_of_ceiling"] = results["test_ccc_mean"] / ceiling["mean"]
        trainer.save_metrics("test", {k: v for k, v in results.items() if k.startswith("test_")})
    protocol_section = data_report.protocol or {}
    if "test_songs_trained_on" in protocol_section:  # music2emo: recorded in all_results.json and the card
        results["test_songs_trained_on"] = protocol_section["test_songs_trained_on"]
        trainer.save_metrics("test", {k: v for k, v in results.items() if k.startswith("test_")})
    if search_summary is not None:  # recorded in all_results.json; every trial in hp_search.json and the card
        trainer.save_metrics("hp_search", {"hp_search_trials": len(search_summary.trials),
                                           "hp_search_best_trial": search_summary.best_trial,
                                           "hp_search_best_objective": search_summary.best_objective})
    if synthetic_info:  # recorded in all_results.json and the model card
        trainer.save_metrics("synthetic", synthetic_info)
        results.update(synthetic_info)

    if trainer.is_world_process_zero():
        data_source = data_report.source
        if data_report.duplicates is not None:  # several datasets: say how their copies of the same music were handled
            dup = data_report.duplicates
            data_source += (f"; {dup['groups_found']} groups of copies of the same music ({dup['songs_in_groups']} "
                            f"songs; {dup['matched_by']}), each in one split with one label "
                            f"({dup['label_rule'].split(' (')[0]})")
        if synthetic_info:
            data_source += (f"; plus {synthetic_info['synthetic_rows']} synthetic GAN windows from "
                            f"{synthetic_info['synthetic_dir']} (training only)")
        info = ModelCardInfo(
            backbone=plan.backbone.name, model_class=type(model).__name__, num_parameters=model.num_parameters(),
            init=model.config.init_checkpoint, pooling=model.config.pooling, loss=model.config.loss,
            features=extractor.to_dict(), data_source=data_source, split_method=data_report.split_method,
            splits=data_report.splits, epochs=training_args.num_train_epochs,
            batch_size=training_args.per_device_train_batch_size, learning_rate=training_args.learning_rate,
            seed=training_args.seed, metric_for_best_model=training_args.metric_for_best_model,
            layer=model.config.layer, probe=model.config.probe, protocol_notes=protocol_notes(protocol_section),
            trained=trained.description, trainable_parameters=trained.trainable,
            z_scored_labels=model.config.label_mean is not None,
            search=search_summary,
        )
        write_model_card(training_args.output_dir, info, results)
        ceiling = f", {results['test_ccc_mean_of_ceiling']:.2f} of the ceiling" if "test_ccc_mean_of_ceiling" in results else ""
        print(f"test CCC: valence {results['test_ccc_valence']:.4f}  arousal {results['test_ccc_arousal']:.4f}  "
              f"mean {results['test_ccc_mean']:.4f}{ceiling}   ({training_args.output_dir})")
        print(f"test R²: valence {results['test_r2_valence']:.4f}  arousal {results['test_r2_arousal']:.4f}  "
              f"mean {results['test_r2_mean']:.4f}")
    if training_args.push_to_hub:
        trainer.push_to_hub(commit_message="Sentio: trained model, feature extractor and card")
    return 0


if __name__ == "__main__":
    run_cli(main, os.path.basename(sys.argv[0]))
