"""``MonitorNode``: the episode runner's handle on the planner (task, replans, status).

The runner talks to the planner node only through its public ROS interface, as any task
manager would: ``~/task`` (JSON with a task id, so status events can be matched to the
episode), the ``~/replan`` service, and the ``~/status`` events it collects here.
"""

import json
import threading
from typing import Any, Dict, List

from rclpy.client import Client
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from std_srvs.srv import Trigger

from cosmos_planner.sim.planner_process import PLANNER_NODE_NAME


class MonitorNode(Node):
    """Sends the task and replan requests, collects the planner's status events."""

    def __init__(self, planner: str = PLANNER_NODE_NAME, **kwargs: Any) -> None:
        super().__init__('sim_episode_monitor', **kwargs)
        self.task_pub = self.create_publisher(String, f'/{planner}/task', QoSProfile(depth=10))
        self.replan_client: Client[Any, Any] = self.create_client(Trigger, f'/{planner}/replan')
        self._status_topic = f'/{planner}/status'
        self.create_subscription(String, self._status_topic, self._on_status,
                                 QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
        self._lock = threading.Lock()
        self.events: List[Dict[str, Any]] = []

    def _on_status(self, msg: String) -> None:
        try:
            event = json.loads(msg.data)
        except ValueError:
            event = {'status': 'unparsable', 'raw': msg.data[:200]}
        if isinstance(event, dict):
            with self._lock:
                self.events.append(event)

    def take_events(self) -> List[Dict[str, Any]]:
        with self._lock:
            out, self.events = self.events, []
        return out

    def planner_ready(self) -> bool:
        """Tell whether the planner is active (it subscribes to ~/task once activated)."""
        return (self.task_pub.get_subscription_count() > 0
                and self.replan_client.service_is_ready()
                and self.count_publishers(self._status_topic) > 0)

    def send_task(self, task: str, task_id: str) -> None:
        self.task_pub.publish(String(data=json.dumps({'task': task, 'task_id': task_id})))

    def request_replan(self) -> None:
        self.replan_client.call_async(Trigger.Request())
