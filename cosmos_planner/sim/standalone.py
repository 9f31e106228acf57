"""Console script ``sim_node``: the tabletop and its controller, for an external planner.

Its own module so that ``sim_node`` (the simulator) and ``controller_node`` (which drives
it) do not import each other: this is the one place that puts the two together.
"""

from typing import Optional

import rclpy
from rclpy.executors import MultiThreadedExecutor

from cosmos_planner.sim.controller_node import ControllerNode
from cosmos_planner.sim.sim_node import SimNode


def main(args: Optional[list] = None) -> None:
    """Console script ``sim_node``: the tabletop alone, for an external planner/controller."""
    rclpy.init(args=args)
    sim = SimNode(start=False)
    ctrl = ControllerNode(sim)
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(sim)
    executor.add_node(ctrl)
    sim.resume()
    try:
        executor.spin()
    except KeyboardInterrupt:
        pass
    finally:
        executor.shutdown()
        sim.close()
        ctrl.destroy_node()
        sim.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
