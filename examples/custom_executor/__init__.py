"""custom_executor: a framework that runs its tasks with its own executor, and talks to it.

::

    python -m examples.custom_executor --master 127.0.0.1:5050 --tasks 2 --pings 3

:mod:`.scheduler` launches each task with an ExecutorInfo whose command runs
``python -m examples.custom_executor.executor`` (:mod:`.executor`) in the task's sandbox. The
executor reports TASK_RUNNING; the scheduler then plays ping-pong with it through framework
messages, both ways (``ping 1`` → ``pong 1`` → ``ping 2`` ...); after the last pong it sends
``finish`` and the executor reports TASK_FINISHED and exits. When every task finished the
framework tears itself down and prints a JSON summary; the exit status is 0 when every task
finished with all its pongs. Both halves are written as Mesos Python frameworks would be: only
the imports differ.
"""
