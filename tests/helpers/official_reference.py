"""An independent transcription of the official MediConfusion scoring (the reference for parity tests).

Transcribed from ``utils/answering.py`` of MShahabSepehri/MediConfusion (``BaseAnsweringModel``:
``check_answer``, ``get_score``, ``create_score_table``, ``update_score_table``, ``print_score``,
and the scoring part of ``evaluate``), keeping its control flow and arithmetic — including its
quirks: the table prints the integer ``0`` (not ``0.0``) for confusion / precision when a row has
no valid pairs, row totals come from ``statistics.json`` and ``len(DATA)``, and the table is
preceded by ``print('\\n')``. It imports nothing from ``robustness`` on purpose.

Usage: ``python tests/official_reference.py RESULTS_JSON --dataset DATASET_JSON --stats
STATISTICS_JSON [--tr 3]`` prints the official table for an official-format results file.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO


def clean_up_manual(question, options, answer):
    """The official MC clean-up (``utils/answering.py`` of AIF4S/MediConfusion), transcribed."""
    labels = ['A', 'B']
    scores = {'full_answer': answer}
    for key in labels:
        scores[key] = 0
    if answer is not None:
        answer = answer.replace('\n', ' ')
        tmp = answer.split(' ')
        for la in labels:
            valid_list = [f'{la}', f'{la}:', f'.{la}', f'.{la}:', f'{la}.',
                          f'{la}\")', f'{la}\n', f'\n{la}', f'(\"{la}\":',
                          f'(\"{la}\")', f'(\"{la}\").']
            correct = any([x in tmp for x in valid_list])
            if correct:
                scores[la] = 10
    tmp = [1 for x in scores.values() if x == 10]
    if sum(tmp) > 1:
        for key in labels:
            scores[key] = 0
    return scores


class OfficialScorer:
    """The official scoring, parameterised by the annotations (DATA) and statistics (STATS)."""

    def __init__(self, data: dict[str, Any], stats: dict[str, int], tr: float = 3) -> None:
        self.DATA = data
        self.STATS = stats
        self.tr = tr

    @staticmethod
    def check_answer(answer, a_score, b_score, tr):
        chosen = '-'
        if a_score >= b_score + tr:
            chosen = 'A'
        elif b_score >= a_score + tr:
            chosen = 'B'
        if chosen == answer:
            return 1, chosen
        return 0, chosen

    def get_score(self, ans_dict, im1_ans, im2_ans):
        im1_correct, c1 = self.check_answer(im1_ans, ans_dict.get('im1').get('A'),
                                            ans_dict.get('im1').get('B'), self.tr)
        invalid1 = (c1 == '-')
        im2_correct, c2 = self.check_answer(im2_ans, ans_dict.get('im2').get('A'),
                                            ans_dict.get('im2').get('B'), self.tr)
        invalid2 = (c2 == '-')
        confused = 1 * ((c1 == c2) and (c1 != '-'))
        return im1_correct, invalid1, im2_correct, invalid2, confused

    def create_score_table(self, cat_1, cat_2, im1_correct, im2_correct, im1_invalid, im2_invalid,
                           confused):
        scores = {'set_score': {}, 'individual_score': {}, 'confused': {}, 'invalid': {},
                  'valids': {}, 'valid_pairs': {}}
        for v in scores.values():
            for key in self.STATS.keys():
                v[key] = 0
            v['total'] = 0
        if confused == 1:
            scores.get('confused')['total'] += 1
            for c in (cat_1 + cat_2):
                scores.get('confused')[c] += 1

        if im1_correct == 1:
            scores.get('individual_score')['total'] += 1
            for c in cat_1:
                scores.get('individual_score')[c] += 1
        if im2_correct == 1:
            scores.get('individual_score')['total'] += 1
            for c in cat_2:
                scores.get('individual_score')[c] += 1

        if im1_invalid == 1:
            scores.get('invalid')['total'] += 1
            for c in cat_1:
                scores.get('invalid')[c] += 1
        if im2_invalid == 1:
            scores.get('invalid')['total'] += 1
            for c in cat_2:
                scores.get('invalid')[c] += 1

        if (im1_invalid == 0) and (im2_invalid == 0):
            scores.get('valids')['total'] += 1
            for c in (cat_1 + cat_2):
                scores.get('valids')[c] += 1
            if confused == 0:
                scores.get('valid_pairs')['total'] += 1
                for c in (cat_1 + cat_2):
                    scores.get('valid_pairs')[c] += 1

        if (im1_correct == 1) and (im2_correct == 1):
            scores.get('set_score')['total'] += 1
            for c in (cat_1 + cat_2):
                scores.get('set_score')[c] += 1
        return scores

    @staticmethod
    def update_score_table(score, sample_score):
        for key in score:
            tmp = score.get(key)
            for cat in tmp.keys():
                tmp[cat] += sample_score.get(key).get(cat)

    def sample_score(self, sample, ans_dict):
        """``sample_eval`` after the model answered: score one pair from its answer dict."""
        im1_correct, im1_invalid, im2_correct, im2_invalid, confused = self.get_score(
            ans_dict, sample.get('im_1_correct'), sample.get('im_2_correct'))
        return self.create_score_table(sample.get('category_1'), sample.get('category_2'),
                                       im1_correct, im2_correct, im1_invalid, im2_invalid, confused)

    def evaluate(self, results):
        """The scoring loop of ``evaluate``: every pair of DATA, in order, from its answers."""
        score = self.create_score_table([], [], -1, -1, -1, -1, -1)
        for id in self.DATA.keys():
            sample_score = self.sample_score(self.DATA.get(id), results.get(id).get('answer'))
            self.update_score_table(score, sample_score)
        return score

    def print_score(self, score, precision=2, file: TextIO = sys.stdout):
        print('\n', file=file)
        print_format = "{:<17} {:<10} {:<10} {:<17} {:<15} {:<15} {:<15} {:<15} {:<15}"
        print(print_format.format('Category', 'Total', 'Set acc.', 'Individual acc.',
                                  'Confused acc.', 'Valid pairs', 'Invalid acc.', 'Precision',
                                  'Precision total'), file=file)
        key_list = list(self.STATS.keys()) + ['total']
        for cat in key_list:
            if cat == 'total':
                total = len(self.DATA)
                num = total / 100
                individual_acc = round(score.get('individual_score').get(cat) / num / 2, precision)
                invalid = round(score.get('invalid').get(cat) / num / 2, precision)
                txt = 'All'
            else:
                total = self.STATS.get(cat)
                num = total / 100
                individual_acc = round(score.get('individual_score').get(cat) / num, precision)
                invalid = round(score.get('invalid').get(cat) / num, precision)
                txt = cat

            set_acc = round(score.get('set_score').get(cat) / num, precision)
            valid_pairs = score.get('valids').get(cat)
            precision_total = score.get('valid_pairs').get(cat)

            confused = 0
            if score.get('valids').get(cat) > 0:
                confused = round(score.get('confused').get(cat) / score.get('valids').get(cat) * 100,
                                 precision)

            pr = 0
            if score.get('valid_pairs').get(cat) > 0:
                pr = round(score.get('set_score').get(cat) / score.get('valid_pairs').get(cat) * 100,
                           precision)

            print(print_format.format(txt, total, set_acc, individual_acc, confused, valid_pairs,
                                      invalid, pr, precision_total), file=file)


def official_results_file(data: dict[str, Any], answers: dict[str, dict[str, dict[str, int]]],
                          scorer: OfficialScorer) -> dict[str, Any]:
    """A results file as the official ``evaluate`` saves it: ``{id: {answer, score}}``."""
    return {pid: {'answer': answers[pid], 'score': scorer.sample_score(data[pid], answers[pid])}
            for pid in data}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--stats", required=True)
    parser.add_argument("--tr", type=float, default=3)
    args = parser.parse_args(argv)
    with open(args.dataset) as fh:
        data = json.load(fh)
    with open(args.stats) as fh:
        stats = json.load(fh)
    with open(args.results) as fh:
        results = json.load(fh)
    scorer = OfficialScorer(data, stats, args.tr)
    scorer.print_score(scorer.evaluate(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
